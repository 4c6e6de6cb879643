"""The invoke namespace: thin tasks grouped by concern; all logic lives in the package below."""

from invoke import Collection

from . import setup, stack, tls, tunnel, users

ns = Collection(
    setup.install,
    stack.up,
    stack.down,
    stack.restart,
    stack.status,
    stack.logs,
    stack.config,
    stack.compose,
)
ns.add_collection(Collection.from_module(users, name="users"))
ns.add_collection(Collection.from_module(tls, name="tls"))
ns.add_collection(Collection.from_module(tunnel, name="tunnel"))
