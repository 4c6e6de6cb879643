"""The invoke namespace: thin tasks grouped by concern; all logic lives in the package below."""

from invoke import Collection

from . import agents, setup, stack, users

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
ns.add_collection(Collection.from_module(agents, name="agents"))
