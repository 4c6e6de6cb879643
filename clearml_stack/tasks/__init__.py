"""The invoke namespace: thin tasks grouped by concern; all logic lives in the package below."""

from invoke import Collection

from . import keys, security, setup, stack, users

ns = Collection(
    setup.install,
    stack.up,
    stack.down,
    stack.restart,
    stack.status,
    stack.logs,
    stack.config,
    stack.compose,
    keys.keys,
    security.doctor,  # the security audit; the full doctor (host checks) extends it
)
ns.add_collection(Collection.from_module(users, name="users"))
