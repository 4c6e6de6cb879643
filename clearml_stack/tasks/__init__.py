"""The invoke namespace: thin tasks grouped by concern; all logic lives in the package below."""

from invoke import Collection

from . import lightning, ops, setup, stack, users

ns = Collection(
    setup.install,
    stack.up,
    stack.down,
    stack.restart,
    stack.status,
    stack.logs,
    stack.config,
    stack.compose,
    # operations (doctor, backups, upgrades)
    ops.doctor,
    ops.backup,
    ops.restore,
    ops.upgrade,
    ops.fresh,
    ops.repair,
)
ns.add_collection(Collection.from_module(users, name="users"))
ns.add_collection(Collection.from_module(lightning, name="lightning"))
