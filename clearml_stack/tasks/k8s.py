"""Kubernetes hand-off: `inv k8s.values`, `inv k8s.export-data`."""

from __future__ import annotations

from .. import ui
from .base import settings as load_settings, task


@task(
    help={
        "out": "directory for the files (default: <data dir>/k8s)",
        "existing_secret": "keep every secret out of the values: write a Kubernetes Secret manifest with this "
                           "name (clearml-secrets.yaml) that both charts read",
        "storage_class": "storage class for every volume (default: CLEARML_K8S_STORAGE_CLASS, else the cluster's)",
        "external_stores": "disable the bundled MongoDB/Elasticsearch/Redis and use CLEARML_EXTERNAL_* instead",
        "force": "replace files in the directory that differ from what would be written",
        "allow_open": "write values even with no web login user (the UI would be open for sign-up)",
    }
)
def values(c, out="", existing_secret="", storage_class="", external_stores=False, force=False,
           allow_open=False):
    """Write values for the official clearml and clearml-agent Helm charts, and a README with the commands."""
    from pathlib import Path

    from ..k8s import agent_queues, write_values
    from ..render import helm

    settings = load_settings()
    settings.require_installed()
    options = helm.K8sOptions(existing_secret=existing_secret, storage_class=storage_class,
                              external_stores=external_stores, allow_open=allow_open,
                              agent_queues=agent_queues(settings))
    plan = write_values(settings, options, Path(out).expanduser() if out else None, force=force)
    for name in plan.write:
        ui.ok(f"wrote {plan.out_dir / name} (mode {helm.FILE_MODES[name]:04o})")
    for name in plan.unchanged:
        ui.ok(f"{plan.out_dir / name} is up to date")
    for name in plan.remove:
        ui.ok(f"removed {plan.out_dir / name} (no --existing-secret this time)")
    ui.note(f"next: the commands in {plan.out_dir / helm.README_FILE} "
            f"(helm install clearml {helm.HELM_REPO_NAME}/{helm.SERVER_CHART.name} --version "
            f"{helm.SERVER_CHART.version} ...)")
    if not existing_secret:
        ui.note(f"{helm.VALUES_FILE} holds the server's secrets; --existing-secret NAME keeps them in a "
                "separate Secret manifest instead")


@task(
    name="export-data",
    help={
        "archive": "use this backup archive instead of making one with the kit's backup",
        "out": "directory for the helper pod manifest (default: <data dir>/k8s)",
    },
)
def export_data(c, archive="", out=""):
    """Print the steps that move a backup archive of this deployment into the Helm charts' volumes."""
    from pathlib import Path

    from ..k8s import export_data as do_export

    settings = load_settings()
    settings.require_installed()
    result = do_export(settings, Path(archive) if archive else None, Path(out).expanduser() if out else None)
    ui.ok(f"archive: {result.archive}")
    ui.ok(f"wrote {result.pod_file}")
    ui.out(result.steps)
