"""Kubernetes hand-off: writing the Helm values (`inv k8s.values`) and the data export (`inv k8s.export-data`).

Rendering is in :mod:`clearml_stack.render.helm`; this module decides what to write, refuses before
writing anything, and writes atomically with the right modes. The export turns a backup archive into
restore steps for the charts' volumes; it never talks to a cluster.
"""

from __future__ import annotations

import os
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import StackError
from .fsutil import atomic_write
from .render import helm
from .settings import Settings
from .users import User, load_users

def agent_queues(settings: Settings) -> str:
    """The queues the agent chart serves: the same ``CLEARML_AGENT_QUEUES`` the compose workers serve."""
    from .agents import split_queues

    return ",".join(split_queues(settings["CLEARML_AGENT_QUEUES"])) or helm.DEFAULT_QUEUE


def default_out_dir(settings: Settings) -> Path:
    return settings.data_dir / "k8s"


@dataclass
class WritePlan:
    """What `inv k8s.values` will do in ``out_dir``: files to write, stale files to remove, conflicts."""

    out_dir: Path
    files: dict[str, str]
    write: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def plan_write(out_dir: Path, files: dict[str, str]) -> WritePlan:
    """Compare rendered files with what ``out_dir`` holds (reads only)."""
    plan = WritePlan(out_dir, files)
    for name, text in files.items():
        path = out_dir / name
        if path.is_file() and path.read_text() == text:
            plan.unchanged.append(name)
            continue
        plan.write.append(name)
        if path.exists():
            plan.conflicts.append(name)
    stale = out_dir / helm.SECRET_FILE
    if helm.SECRET_FILE not in files and stale.exists():
        # a Secret manifest from an earlier --existing-secret run no longer matches the values
        plan.remove.append(helm.SECRET_FILE)
        plan.conflicts.append(helm.SECRET_FILE)
    return plan


def apply_plan(plan: WritePlan, force: bool) -> None:
    if plan.conflicts and not force:
        raise StackError(
            f"{plan.out_dir} already holds different {', '.join(sorted(plan.conflicts))}",
            "run again with --force to replace them (or give another --out DIR)",
        )
    if plan.out_dir.exists() and not plan.out_dir.is_dir():
        raise StackError(f"{plan.out_dir} is not a directory", "give a directory with --out DIR")
    for name in plan.write:
        atomic_write(plan.out_dir / name, plan.files[name], helm.FILE_MODES[name])
    for name in plan.unchanged:
        os.chmod(plan.out_dir / name, helm.FILE_MODES[name])
    for name in plan.remove:
        (plan.out_dir / name).unlink()


def write_values(settings: Settings, options: helm.K8sOptions, out_dir: Path | None = None,
                 force: bool = False, users: list[User] | None = None) -> WritePlan:
    """Render everything, refuse on any problem before touching the disk, then write."""
    users = load_users(settings.users_file) if users is None else users
    files = helm.render_bundle(settings, users, options)
    plan = plan_write(Path(out_dir) if out_dir else default_out_dir(settings), files)
    apply_plan(plan, force)
    return plan


# --- export-data ------------------------------------------------------------------------------

#: where the official host layout keeps each store under the data directory (kept by the kit)
FILESERVER_DIR = "data/fileserver"
MONGO_DIR = "data/mongo_4/db"
ELASTIC_DIR = "data/elastic_7"

RESTORE_POD = "clearml-restore"
RESTORE_POD_FILE = "clearml-restore-pod.yaml"
#: names chart clearml 7.14.4 gives its objects for release "clearml" (fullname = release name)
FILESERVER_CLAIM = f"{helm.SERVER_RELEASE}-fileserver-data"
SERVER_DEPLOYMENTS = (f"{helm.SERVER_RELEASE}-apiserver", f"{helm.SERVER_RELEASE}-apiserver-asyncdelete",
                      f"{helm.SERVER_RELEASE}-fileserver")
MONGO_DEPLOYMENT = f"{helm.SERVER_RELEASE}-mongodb"
#: the chart's bundled stores (subcharts of clearml 7.14.4)
BUNDLED_MONGO = "MongoDB 6.0 (bitnami chart 13.18.5)"
BUNDLED_ELASTIC = "Elasticsearch 7.17 (elastic chart 7.17.3)"
HELPER_IMAGE = "busybox:1.36.1"


def make_backup_archive(settings: Settings) -> Path:
    """A fresh, consistent backup archive of this deployment (what `inv backup` makes)."""
    from .backup import create_backup

    return Path(create_backup(settings))


@dataclass(frozen=True)
class ArchiveLayout:
    """Where each store's files are inside a backup archive (member path prefixes), if present."""

    fileserver: str | None
    mongo: str | None
    elastic: str | None


def _prefix(names: list[str], marker: str) -> str | None:
    """The member path up to and including ``marker`` (e.g. ``backup/data/fileserver``), or None."""
    wanted = marker.split("/")
    for name in names:
        parts = [p for p in name.split("/") if p not in ("", ".")]
        for i in range(len(parts) - len(wanted) + 1):
            if parts[i:i + len(wanted)] == wanted:
                return "/".join(parts[:i + len(wanted)])
    return None


def inspect_archive(archive: Path) -> ArchiveLayout:
    """Find the fileserver, Mongo and Elasticsearch directories in a tar archive (any compression)."""
    if not archive.is_file():
        raise StackError(f"no archive at {archive}", "give the path of a backup archive with --archive FILE")
    try:
        with tarfile.open(archive) as tar:
            names = tar.getnames()
    except (tarfile.TarError, OSError) as exc:
        raise StackError(f"{archive} is not a readable tar archive ({exc})",
                         "give the archive `inv backup` wrote (a .tar or .tar.gz)") from exc
    layout = ArchiveLayout(_prefix(names, FILESERVER_DIR), _prefix(names, MONGO_DIR), _prefix(names, ELASTIC_DIR))
    if not any((layout.fileserver, layout.mongo, layout.elastic)):
        raise StackError(
            f"{archive} holds none of {FILESERVER_DIR}, {MONGO_DIR}, {ELASTIC_DIR}",
            "give a backup archive of the data directory (made with the stack stopped)",
        )
    return layout


def restore_pod_manifest(settings: Settings) -> dict[str, Any]:
    """A helper pod mounting the fileserver's volume, to stream the files into it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": RESTORE_POD, "namespace": settings["CLEARML_K8S_NAMESPACE"],
                     "labels": {"app.kubernetes.io/managed-by": "clearml-lightning"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "restore",
                "image": HELPER_IMAGE,
                "command": ["sleep", "86400"],
                "volumeMounts": [{"name": "fileserver-data", "mountPath": "/mnt/fileserver"}],
            }],
            "volumes": [{"name": "fileserver-data", "persistentVolumeClaim": {"claimName": FILESERVER_CLAIM}}],
        },
    }


def restore_steps(settings: Settings, archive: Path, layout: ArchiveLayout, pod_file: Path,
                  work_dir: str = "/tmp/clearml-export") -> str:
    """The printed hand-off: what the archive holds, and the commands that move each part (pure)."""
    ns = settings["CLEARML_K8S_NAMESPACE"]
    kubectl = ["kubectl", "--namespace", ns]
    q = shlex.quote
    mongo_image = settings.image("mongo")
    elastic_image = settings.image("elastic")
    lines = [
        f"Backup archive: {archive}",
        "",
        f"Helper pod manifest: {pod_file}",
        "",
        "What `inv k8s.export-data` did: made or read this archive and wrote the helper pod manifest. It",
        "does not talk to your cluster: the steps below are for you to run, and the kit has not run them",
        "against a cluster. Keep the archive until the new deployment is checked.",
        "",
        "1. Values and charts, with the same secrets (access keys and agents keep working) and users:",
        "   inv k8s.values --existing-secret clearml-secrets",
        "   then follow the README it writes (helm install), and wait until the pods run.",
        "",
        "2. Unpack the archive on this host and stop the server's writers:",
        f"   mkdir -p {q(work_dir)} && tar -xf {q(str(archive))} -C {q(work_dir)}",
        "   " + shlex.join([*kubectl, "scale", "deployment", *SERVER_DEPLOYMENTS, "--replicas=0"]),
        "",
    ]
    if layout.fileserver:
        src = f"{work_dir}/{layout.fileserver}"
        lines += [
            "3. Uploaded files (artifacts, models, debug samples) into the fileserver's volume:",
            "   " + shlex.join([*kubectl, "apply", "-f", str(pod_file)]),
            "   " + shlex.join([*kubectl, "wait", "--for=condition=Ready", f"pod/{RESTORE_POD}"]),
            f"   tar -C {q(src)} -cf - . | "
            + shlex.join([*kubectl, "exec", "-i", RESTORE_POD, "--", "tar", "-xf", "-", "-C", "/mnt/fileserver"]),
            "   " + shlex.join([*kubectl, "exec", RESTORE_POD, "--", "chown", "-R", "1000:1000", "/mnt/fileserver"]),
            "   " + shlex.join([*kubectl, "delete", "pod", RESTORE_POD]),
            "",
        ]
    else:
        lines += [f"3. Uploaded files: the archive holds no {FILESERVER_DIR}; nothing to copy.", ""]
    if layout.mongo:
        src = f"{work_dir}/{layout.mongo}"
        dump = f"{work_dir}/mongo.archive.gz"
        lines += [
            "4. MongoDB (projects, tasks, models, queues): the archive holds data files of "
            f"{mongo_image}, which only a",
            "   mongod of that version opens. Dump them on this host with that image, then restore into the",
            f"   chart's {BUNDLED_MONGO}; a logical restore across versions the kit has not verified:",
            "   " + shlex.join(["docker", "run", "-d", "--name", "clearml-export-mongo", "-v", f"{src}:/data/db",
                                mongo_image]),
            "   until docker exec clearml-export-mongo mongosh --quiet --eval 'db.runCommand({ping: 1})' "
            ">/dev/null 2>&1; do sleep 2; done",
            f"   docker exec clearml-export-mongo mongodump --archive --gzip > {q(dump)}",
            "   docker rm -f clearml-export-mongo",
            "   " + shlex.join([*kubectl, "exec", "-i", f"deployment/{MONGO_DEPLOYMENT}", "--", "mongorestore",
                                "--archive", "--gzip", "--drop"]) + f" < {q(dump)}",
            "   With `inv k8s.values --external-stores`, start your own mongod of the same version on a copy of",
            f"   {src} instead (the files were copied with the store stopped).",
            "",
        ]
    else:
        lines += [f"4. MongoDB: the archive holds no {MONGO_DIR}; nothing to restore.", ""]
    if layout.elastic:
        lines += [
            "5. Elasticsearch (console logs, scalars, plots): the archive holds data files of "
            f"{elastic_image}. The",
            f"   chart's bundled {BUNDLED_ELASTIC} cannot open them and the kit has no tool to move them, so",
            "   with the bundled stores this history stays in the archive. To keep it, run your own node of",
            f"   {elastic_image} on a copy of {work_dir}/{layout.elastic} and use",
            "   `inv k8s.values --external-stores` (CLEARML_EXTERNAL_ELASTIC_HOSTS).",
            "",
        ]
    else:
        lines += [f"5. Elasticsearch: the archive holds no {ELASTIC_DIR}; nothing to restore.", ""]
    lines += [
        "6. Redis holds caches and short-lived state only: not carried over.",
        "",
        "7. Start the server again and check it:",
        "   " + shlex.join([*kubectl, "scale", "deployment", *SERVER_DEPLOYMENTS, "--replicas=1"]),
        "   " + shlex.join([*kubectl, "get", "pods"]),
        f"   then sign in at {helm.public_urls(settings).web} and open a task with artifacts.",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ExportResult:
    archive: Path
    pod_file: Path
    steps: str


def export_data(settings: Settings, archive: Path | None = None, out_dir: Path | None = None,
                make_archive: Callable[[Settings], Path] = make_backup_archive) -> ExportResult:
    """Make (or take) the backup archive, write the helper pod manifest, return the restore steps."""
    if not settings.domain:
        raise StackError("CLEARML_DOMAIN is not set: the Kubernetes deployment is reached on "
                         "app./api./files.<domain>", "set it with `inv install --domain clearml.example.com`")
    archive = Path(archive).expanduser().resolve() if archive else make_archive(settings)
    layout = inspect_archive(archive)
    out = Path(out_dir) if out_dir else default_out_dir(settings)
    pod_file = out / RESTORE_POD_FILE
    atomic_write(pod_file, helm.dump_yaml(
        restore_pod_manifest(settings),
        "# Helper pod for `inv k8s.export-data`: mounts the clearml fileserver volume. Delete it when done.\n"),
        0o644)
    return ExportResult(archive, pod_file, restore_steps(settings, archive, layout, pod_file))
