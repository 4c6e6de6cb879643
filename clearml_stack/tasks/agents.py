"""Agents: `inv agents.up/down/status/bundle`."""

from __future__ import annotations

from .. import ui
from .base import settings as load_settings, task


@task(iterable=["queue"], help={
    "replicas": "number of worker agents on this host, 1 or more (default: as configured, at least 1; "
                "`inv agents.down` stops them all)",
    "queue": "queue to serve; repeat for several, the first has priority (default: CLEARML_AGENT_QUEUES)",
    "gpus": "GPUs each worker gets: all, or ids like 0,1 (needs the NVIDIA runtime in Docker)",
    "cpu_only": "no GPUs (clears a configured CLEARML_AGENT_GPUS)",
    "timeout": "seconds to wait for the workers to run (default: CLEARML_WAIT_TIMEOUT)",
    "only_configured": "start the configured workers only if CLEARML_AGENT_REPLICAS is above 0, else do "
                       "nothing (for start-up hooks; takes no other option)",
})
def up(c, replicas=None, queue=None, gpus="", cpu_only=False, timeout=0, only_configured=False):
    """Start or rescale worker agents on this host (one compose service, N replicas)."""
    from ..agent_stack import up as agents_up
    from ..agents import parse_replicas_flag

    wanted = parse_replicas_flag(replicas)
    settings = load_settings()
    if only_configured:
        from ..agents import configured_start

        if not configured_start(settings.values, wanted, queue or (), gpus, cpu_only):
            ui.note("no worker agents configured (CLEARML_AGENT_REPLICAS=0): nothing to start")
            return
    agents_up(settings, replicas=wanted, queues=queue or (), gpus=gpus, cpu_only=cpu_only,
              timeout=int(timeout) or None)


@task(help={"forget": "also set CLEARML_AGENT_REPLICAS=0, so `inv up` and Studio restarts start no workers "
                      "(default: keep the configured count for the next `inv agents.up`)"})
def down(c, forget=False):
    """Stop and remove the worker agents; the server keeps running."""
    from ..agent_stack import down as agents_down

    agents_down(load_settings(), forget=forget)


@task(help={"json": "print the report as JSON (for scripts)"})
def status(c, json=False):
    """Show worker agents: container, state, registered worker id, queues, task."""
    import json as json_mod

    from ..agent_stack import status as agents_status, status_text

    report = agents_status(load_settings())
    ui.out(json_mod.dumps(report, indent=2) if json else status_text(report))


@task(iterable=["queue"], help={
    "out": "where to write the tarball (default: clearml-agents-<project>.tar.gz here)",
    "replicas": "agents the other machine starts (default 1)",
    "queue": "queue to serve; repeat for several (default: CLEARML_AGENT_QUEUES)",
    "local_ports": "tunnel mode: ports WEB,API,FILES the bundle's tunnel listens on there (default: the "
                   "server's own), as `inv connect-script --local-ports`",
})
def bundle(c, out="", replicas=1, queue=None, local_ports=""):
    """Write a tarball that turns another machine into worker agents of this server."""
    from pathlib import Path

    from .. import bundle as bundle_mod
    from ..clients import parse_local_ports
    from ..errors import StackError

    settings = load_settings()
    settings.require_installed()
    if local_ports and settings.mode != "tunnel":
        raise StackError(f"--local-ports {local_ports}: the server is in {settings.mode} mode, where agents use "
                         "its public URLs and no tunnel", "drop --local-ports")
    ports = parse_local_ports(local_ports) if local_ports else None
    connect = bundle_mod.connect_script(settings, local_ports=ports)
    files = bundle_mod.render(settings, int(replicas), queue or (), connect, local_ports=ports)
    target = Path(out or f"clearml-agents-{settings.project}.tar.gz").expanduser().resolve()
    bundle_mod.write(target, bundle_mod.tarball(files))
    ui.ok(f"wrote {target} (mode 0600: it holds the agent key pair)")
    ui.note(f"on the other machine: tar xzf {target.name} && cd {bundle_mod.TOP} && cat README.md")
    if settings.mode == "tunnel" and connect is None:
        ui.warn("tunnel mode: the bundle has no connect.sh (the kit does not know how clients reach this host)",
                "set CLEARML_SSH_TARGET=USER@HOST[:PORT] and run `inv agents.bundle` again, or copy the output of "
                "`inv connect-script --target USER@HOST` into the bundle's directory")
    ui.out(str(target))
