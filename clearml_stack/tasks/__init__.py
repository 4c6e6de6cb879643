"""The invoke namespace: thin tasks grouped by concern; all logic lives in the package below."""

from invoke import Collection

from . import agents, clients, examples, k8s, keys, lightning, ops, setup, stack, tls, tunnel, users

ns = Collection(
    setup.install,
    stack.up,
    stack.down,
    stack.restart,
    stack.status,
    stack.logs,
    stack.config,
    stack.compose,
    clients.connect_script,
    clients.client_config,
    clients.host,
    examples.smoke,
    examples.examples,
    keys.keys,
    # operations: doctor (host checks and the security audit), backups, upgrades
    ops.doctor,
    ops.backup,
    ops.restore,
    ops.upgrade,
    ops.fresh,
    ops.repair,
)
ns.add_collection(Collection.from_module(users, name="users"))
ns.add_collection(Collection.from_module(agents, name="agents"))
ns.add_collection(Collection.from_module(k8s, name="k8s"))
ns.add_collection(Collection.from_module(tls, name="tls"))
ns.add_collection(Collection.from_module(tunnel, name="tunnel"))
ns.add_collection(Collection.from_module(lightning, name="lightning"))
