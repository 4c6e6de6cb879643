"""`inv backup` and `inv restore`: one archive holds everything a new host needs.

Consistency method: copying live Mongo or Elasticsearch directories is unsafe, so the backup stops
every running service of the stack with ``docker compose stop`` (a clean shutdown: Mongo and
Elasticsearch flush and close their files), archives the stores' directories, then starts again
exactly the services that were running. The server is unavailable for the length of the copy.

Archive (``.tar.gz``, mode 0600, in a mode-0700 directory; written as ``<name>.partial`` and renamed
when complete, so a file under the final name is always a whole archive):

- ``data/data/...``, ``data/config/...`` and ``data/tls/...``: the data directory's ``data/``
  (fileserver, elastic_7, mongo_4, redis), ``config/`` (rendered server config, secrets) and ``tls/``
  (the gateway's private CA and its key: clients that trust it keep trusting the restored gateway).
  ``logs/`` and ``agent/`` (caches) are left out, as in the official backup; ``nginx/`` is rendered
  again from the settings at start.
- ``settings.env`` (the settings file with its generated secrets) and ``users.json`` (bcrypt hashes).
- ``manifest.json`` last: format, time, project, server version, image references, per-entry size,
  mode and sha256, and totals.

Restore verifies the whole archive (every checksum, nothing missing or extra, safe paths, a release the
kit knows, and that the release and image tags the restored settings would run are those of the
manifest) before it changes anything; then it moves the current ``data/``, ``config/`` and ``tls/``
that the archive replaces and copies the current settings and users files into a side copy
``<data>/pre-restore-<time>/``, puts the archive's content in place, gives ``data/`` and ``config/``
to uid 1000 when run as root (otherwise prints the ``sudo chown`` to run), starts the stack and
waits until it is healthy, and only then deletes the side copy (``--keep-previous`` keeps it; with
``--no-start`` or on failure it is kept and its path printed with the commands to put it back).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Iterable

from . import __version__ as KIT_VERSION
from . import ui
from .errors import StackError
from .fsutil import SERVICE_UID, atomic_write

FORMAT = 1
MANIFEST = "manifest.json"
SETTINGS_MEMBER = "settings.env"
USERS_MEMBER = "users.json"
DATA_PREFIX = "data"
ARCHIVED_DIRS = ("data", "config", "tls")  # under the data directory
CONTAINER_DIRS = ("data", "config")  # what the containers (uid 1000) read and write
IMAGE_KEYS = {"server": "CLEARML_SERVER_IMAGE", "mongo": "MONGO_IMAGE", "elastic": "ELASTIC_IMAGE",
              "redis": "REDIS_IMAGE"}
PARTIAL_SUFFIX = ".partial"
CHUNK = 1 << 20


# --- pure parts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One archive member as the manifest records it."""

    path: str
    type: str  # file, dir or symlink
    size: int = 0
    sha256: str = ""
    mode: int = 0o644
    target: str = ""  # symlinks only

    def as_dict(self) -> dict:
        d = {"path": self.path, "type": self.type, "mode": oct(self.mode)}
        if self.type == "file":
            d.update(size=self.size, sha256=self.sha256)
        if self.type == "symlink":
            d["target"] = self.target
        return d

    @staticmethod
    def from_dict(d: dict) -> "Entry":
        return Entry(d["path"], d["type"], int(d.get("size", 0)), d.get("sha256", ""), int(d.get("mode", "0o644"), 8),
                     d.get("target", ""))


def archive_name(project: str, version: str, when: float) -> str:
    """``clearml-backup-<project>-<version>-<UTC time>.tar.gz`` (pure)."""
    return f"clearml-backup-{project}-{version}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(when))}.tar.gz"


def build_manifest(entries: Iterable[Entry], *, project: str, server_version: str, images: dict[str, str],
                   created: float, data_dir: str, settings_file: str, method: str) -> dict:
    """The manifest document (pure)."""
    entries = list(entries)
    files = [e for e in entries if e.type == "file"]
    return {
        "format": FORMAT,
        "kit": f"clearml-lightning {KIT_VERSION}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
        "project": project,
        "server_version": server_version,
        "images": images,
        "source": {"data_dir": data_dir, "settings_file": settings_file},
        "method": method,
        "totals": {"entries": len(entries), "files": len(files), "bytes": sum(e.size for e in files)},
        "entries": [e.as_dict() for e in entries],
    }


def safe_member(name: str) -> bool:
    """True for a relative path inside the archive's known top-level names, without '..'."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        return False
    if name in (MANIFEST, SETTINGS_MEMBER, USERS_MEMBER):
        return True
    return p.parts[0] == DATA_PREFIX and len(p.parts) >= 2 and p.parts[1] in ARCHIVED_DIRS


def compare(manifest: dict, seen: dict[str, Entry]) -> list[str]:
    """Every way the archive's content differs from its manifest (pure); empty when it matches."""
    problems: list[str] = []
    if manifest.get("format") != FORMAT:
        problems.append(f"manifest format {manifest.get('format')!r} is not {FORMAT} (made by another kit version?)")
        return problems
    listed = {d["path"]: Entry.from_dict(d) for d in manifest.get("entries", [])}
    for path in sorted(set(listed) - set(seen)):
        problems.append(f"missing from the archive: {path}")
    for path in sorted(set(seen) - set(listed)):
        problems.append(f"not in the manifest: {path}")
    for path in sorted(set(listed) & set(seen)):
        want, got = listed[path], seen[path]
        if want.type != got.type:
            problems.append(f"{path}: a {got.type}, the manifest says {want.type}")
        elif want.type == "file" and (want.size, want.sha256) != (got.size, got.sha256):
            problems.append(f"{path}: checksum mismatch (size {got.size}, manifest {want.size})")
        elif want.type == "symlink" and want.target != got.target:
            problems.append(f"{path}: link target differs from the manifest")
    totals = manifest.get("totals", {})
    if totals.get("files") is not None and totals.get("files") != sum(1 for e in listed.values() if e.type == "file"):
        problems.append("the manifest's file count does not match its entries")
    return problems


def release_problem(manifest: dict, settings_text: str | None, known: list[str]) -> str | None:
    """Why the archive's server version cannot be restored by this kit, or None (pure)."""
    from .envfile import parse_env

    version = manifest.get("server_version", "")
    if settings_text is None:
        return "the archive has no settings file"
    recorded = parse_env(settings_text, SETTINGS_MEMBER).get("CLEARML_SERVER_VERSION", "")
    if recorded and recorded != version:
        return f"the manifest says server {version!r} but the archived settings record {recorded!r}"
    if version not in known:
        return (f"the archive holds data of server {version!r}, which this kit does not know "
                f"(it knows {', '.join(known)})")
    return None


def image_tag(ref: str) -> str:
    """The tag (or digest) of an image reference; ``latest`` when it names none (pure)."""
    if "@" in ref:
        return ref.split("@", 1)[1]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def runtime_mismatch(manifest: dict, version: str, images: dict[str, str], overridden: Iterable[str]) -> list[str]:
    """Where the release the restored settings would run differs from the archive's (pure).

    ``version`` and ``images`` are what the settings give after the restore (file and environment
    together); each problem names the variable to unset or set. Image tags are compared, not whole
    references: the same tag from a mirror (another registry or repository) is the same image.
    """
    overridden = set(overridden)
    problems = []
    wanted = manifest.get("server_version", "")
    if version != wanted:
        how = ("unset CLEARML_SERVER_VERSION in the environment" if "CLEARML_SERVER_VERSION" in overridden
               else f"set CLEARML_SERVER_VERSION={wanted}")
        problems.append(f"the restored settings would run server {version}, the archive holds data of {wanted}: {how}")
        return problems  # the image tags follow the version: comparing them would repeat the same cause
    for name, key in IMAGE_KEYS.items():
        archived = (manifest.get("images") or {}).get(name)
        if not archived or name not in images:
            continue
        if image_tag(images[name]) != image_tag(archived):
            how = (f"unset {key} in the environment, or set it to {archived}" if key in overridden
                   else f"set {key}={archived} in the environment (as when the backup was made)")
            problems.append(f"the restored settings would run {images[name]}, the archive was made with {archived}: "
                            f"{how}")
    return problems


# --- reading archives ---------------------------------------------------------------------------


@dataclass
class Verified:
    path: Path
    manifest: dict
    settings_text: str | None
    users_text: str | None
    entries: dict[str, Entry] = field(default_factory=dict)


def _hash_stream(src: IO[bytes], sink: IO[bytes] | None = None) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return size, h.hexdigest()


def _member_entry(member: tarfile.TarInfo, name: str) -> Entry:
    mode = member.mode & 0o7777
    if member.isdir():
        return Entry(name, "dir", mode=mode)
    if member.issym():
        return Entry(name, "symlink", mode=mode, target=member.linkname)
    return Entry(name, "file", mode=mode)


def _check_member(member: tarfile.TarInfo) -> str:
    name = member.name.rstrip("/")
    if not safe_member(name):
        raise StackError(f"refusing the archive: unexpected member {member.name!r}", "use an archive made by `inv backup`")
    if not (member.isfile() or member.isdir() or member.issym()):
        raise StackError(f"refusing the archive: {member.name!r} is not a file, directory or symlink",
                         "use an archive made by `inv backup`")
    if member.issym() and (PurePosixPath(member.linkname).is_absolute() or ".." in PurePosixPath(member.linkname).parts):
        raise StackError(f"refusing the archive: link {member.name!r} points outside ({member.linkname!r})",
                         "use an archive made by `inv backup`")
    return name


def verify(path: Path) -> Verified:
    """Read the whole archive once: safe names, every checksum, the manifest. Changes nothing."""
    path = Path(path)
    if not path.is_file():
        raise StackError(f"no backup archive at {path}", "give the path `inv backup` printed")
    seen: dict[str, Entry] = {}
    manifest_bytes = settings_text = users_text = None
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                name = _check_member(member)
                if name in seen or (name == MANIFEST and manifest_bytes is not None):
                    raise StackError(f"refusing the archive: {name} appears twice", "use an archive made by `inv backup`")
                if name == MANIFEST:
                    manifest_bytes = tar.extractfile(member).read()  # type: ignore[union-attr]
                    continue
                entry = _member_entry(member, name)
                if member.isfile():
                    buf = io.BytesIO() if name in (SETTINGS_MEMBER, USERS_MEMBER) else None
                    size, digest = _hash_stream(tar.extractfile(member), buf)  # type: ignore[arg-type]
                    entry = Entry(name, "file", size, digest, entry.mode)
                    if name == SETTINGS_MEMBER:
                        settings_text = buf.getvalue().decode()  # type: ignore[union-attr]
                    elif name == USERS_MEMBER:
                        users_text = buf.getvalue().decode()  # type: ignore[union-attr]
                seen[name] = entry
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as exc:
        raise StackError(f"refusing {path}: the archive is damaged or not a backup ({exc})",
                         "use another backup; nothing was changed") from exc
    if manifest_bytes is None:
        raise StackError(f"refusing {path}: it has no {MANIFEST}", "use an archive made by `inv backup`")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise StackError(f"refusing {path}: its manifest is not valid JSON", "use another backup") from exc
    problems = compare(manifest, seen)
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise StackError(f"refusing {path}: it does not match its manifest:\n  " + "\n  ".join(shown),
                         "the archive is corrupted or was changed; use another backup. Nothing was changed")
    return Verified(path, manifest, settings_text, users_text, seen)


# --- making archives ----------------------------------------------------------------------------


def _walk(root: Path) -> Iterable[Path]:
    """``root`` and everything below it, directories before their content, sorted."""
    yield root
    if root.is_dir() and not root.is_symlink():
        for child in sorted(root.iterdir()):
            yield from _walk(child)


def _add(tar: tarfile.TarFile, source: Path, name: str) -> Entry:
    st = source.lstat()
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uid, info.gid = st.st_mode & 0o7777, int(st.st_mtime), st.st_uid, st.st_gid
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        return Entry(name, "dir", mode=info.mode)
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(source)
        tar.addfile(info)
        return Entry(name, "symlink", mode=info.mode, target=info.linkname)
    if not stat.S_ISREG(st.st_mode):
        raise StackError(f"{source} is not a regular file, directory or symlink", "remove it and back up again")
    info.size = st.st_size
    with open(source, "rb") as fh:
        hashing = _HashingReader(fh)
        tar.addfile(info, hashing)
        if hashing.size != st.st_size:
            raise StackError(f"{source} changed size while it was archived", "make sure the stack is stopped, retry")
    return Entry(name, "file", hashing.size, hashing.digest(), info.mode)


class _HashingReader:
    """A file object that hashes what tarfile reads from it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.h, self.size = fh, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.h.update(data)
        self.size += len(data)
        return data

    def digest(self) -> str:
        return self.h.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o600) -> Entry:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))
    return Entry(name, "file", len(data), hashlib.sha256(data).hexdigest(), mode)


def default_out_dir(settings) -> Path:
    value = settings.values.get("CLEARML_BACKUP_DIR", "backups") or "backups"
    path = Path(value).expanduser()
    return path if path.is_absolute() else (settings.base_dir / path).resolve()


def write_archive(settings, target: Path, method: str) -> dict:
    """Write the archive of the (stopped) stack to ``target`` (mode 0600). Returns the manifest.

    It is written as ``<target>.partial`` and renamed once complete and synced: an interrupted backup
    never leaves a file under the final name.
    """
    data_dir = settings.data_dir
    entries: list[Entry] = []
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    if target.exists():
        raise StackError(f"{target} already exists", "wait a second and back up again, or use another --out")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                if settings.env_file.is_file():
                    entries.append(_add_bytes(tar, SETTINGS_MEMBER, settings.env_file.read_bytes()))
                if settings.users_file.is_file():
                    entries.append(_add_bytes(tar, USERS_MEMBER, settings.users_file.read_bytes()))
                for sub in ARCHIVED_DIRS:
                    root = data_dir / sub
                    if not root.exists():
                        continue
                    for path in _walk(root):
                        rel = path.relative_to(data_dir).as_posix()
                        entries.append(_add(tar, path, f"{DATA_PREFIX}/{rel}"))
                images = {name: settings.image(name) for name in IMAGE_KEYS}
                manifest = build_manifest(entries, project=settings.project, server_version=settings["CLEARML_SERVER_VERSION"],
                                          images=images, created=time.time(), data_dir=str(data_dir),
                                          settings_file=str(settings.env_file), method=method)
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode(), 0o600)
            raw.flush()  # after the tar and gzip trailers are written
            os.fsync(raw.fileno())
        os.replace(partial, target)
    except PermissionError as exc:
        partial.unlink(missing_ok=True)
        raise StackError(f"cannot read {exc.filename}: permission denied",
                         "run the backup as root (e.g. `sudo .venv/bin/inv backup`): the stores' files belong "
                         "to the containers' users") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return manifest


def create(settings, out_dir: Path | str | None = None, restart: bool = True, print_path: bool = True) -> Path:
    """Stop what runs, archive, start again what ran. Returns the archive path.

    ``restart=False`` leaves the stack stopped after a successful backup (for callers that go on with a
    stopped stack: upgrade, fresh, repair); after a failed one it is always started again.
    """
    from .stack import Stack

    settings.require_installed()
    out = Path(out_dir).expanduser().resolve() if out_dir else default_out_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    stack = Stack(settings)
    running = sorted({s.service for s in stack.states() if s.state in ("running", "restarting")})
    target = out / archive_name(settings.project, settings["CLEARML_SERVER_VERSION"], time.time())
    if running:
        ui.note(f"stopping {len(running)} running service(s) for a consistent copy: {', '.join(running)}")
        stack.compose("stop")
        method = f"docker compose stop of {', '.join(running)}, archive, start again"
    else:
        method = "stack was not running: archived as found"
    started = time.monotonic()
    done = False
    try:
        manifest = write_archive(settings, target, method)
        done = True
    finally:
        if running and (restart or not done):  # a failed backup never leaves the server down
            ui.note(f"starting again: {', '.join(running)}")
            stack.compose("start", *running)
            stack.wait_healthy(int(settings["CLEARML_WAIT_TIMEOUT"]))
    totals = manifest["totals"]
    ui.ok(f"backup written: {target} ({totals['files']} files, {totals['bytes'] / 2**20:.1f} MiB of data, "
          f"{target.stat().st_size / 2**20:.1f} MiB archive, mode 0600) in {time.monotonic() - started:.1f}s")
    if print_path:
        ui.out(str(target))
    return target


def create_backup(settings) -> Path:
    """The integration point other features call (e.g. `inv k8s.export-data`): a consistent archive, path returned."""
    return create(settings, print_path=False)


# --- restoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SideCopy:
    path: Path
    moved: tuple[str, ...]  # names under the data dir moved into the side copy
    settings_file: Path | None
    users_file: Path | None

    def rollback_commands(self, data_dir: Path, env_file: Path, users_file: Path) -> list[str]:
        import shlex

        q = shlex.quote
        cmds = ["inv down"]
        for name in self.moved:
            cmds += [f"rm -rf {q(str(data_dir / name))}", f"mv {q(str(self.path / name))} {q(str(data_dir / name))}"]
        if self.settings_file:
            cmds.append(f"cp -p {q(str(self.settings_file))} {q(str(env_file))}")
        if self.users_file:
            cmds.append(f"cp -p {q(str(self.users_file))} {q(str(users_file))}")
        return cmds


def target_settings(settings_text: str, env_file: Path, environ: dict[str, str] | None = None):
    """The settings the restored files will give, computed before anything is written."""
    from . import settings as settings_mod
    from .envfile import parse_env

    environ = dict(os.environ) if environ is None else environ
    values = settings_mod.merge_sources(parse_env(settings_text, SETTINGS_MEMBER), environ)
    found = settings_mod.problems(values)
    if found:
        raise StackError("refusing the archive: its settings are not valid for this kit:\n  " + "\n  ".join(found),
                         "nothing was changed; fix the environment variables named, or use another backup")
    return settings_mod.Settings(values=values, env_file=env_file, env_file_exists=True,
                                 overridden=frozenset(k for k in settings_mod.BY_KEY if k in environ))


def _running(settings) -> list[str]:
    from .stack import Stack

    try:
        states = Stack(settings).states()
    except StackError:
        return []
    return sorted({s.service for s in states if s.state in ("running", "restarting")})


def extract(archive: Verified, staging: Path) -> None:
    """Second pass: write the data entries under ``staging``, checking each checksum again."""
    want = {d["path"]: Entry.from_dict(d) for d in archive.manifest["entries"]}
    dirs: list[tuple[Path, int]] = []
    with tarfile.open(archive.path, "r|gz") as tar:
        for member in tar:
            name = _check_member(member)
            if not name.startswith(DATA_PREFIX + "/"):
                continue
            dest = staging / PurePosixPath(name).relative_to(DATA_PREFIX)
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True)
                dirs.append((dest, member.mode & 0o7777))
            elif member.issym():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(member.linkname, dest)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    size, digest = _hash_stream(tar.extractfile(member), out)  # type: ignore[arg-type]
                if (size, digest) != (want[name].size, want[name].sha256):
                    raise StackError(f"{name} changed between verification and extraction",
                                     "the archive file is being modified; copy it somewhere safe and retry")
                os.chmod(dest, member.mode & 0o7777)
                os.utime(dest, (member.mtime, member.mtime))
    for path, mode in reversed(dirs):
        os.chmod(path, mode)


def chown_tree(root: Path, uid: int = SERVICE_UID) -> int:
    """chown -R uid:uid (no link following) when root; returns how many entries changed."""
    if os.geteuid() != 0 or not root.exists():
        return 0
    changed = 0
    for path in _walk(root):
        st = path.lstat()
        if (st.st_uid, st.st_gid) != (uid, uid):
            os.lchown(path, uid, uid)
            changed += 1
    return changed


def not_owned(data_dir: Path, names: Iterable[str], uid: int = SERVICE_UID) -> list[str]:
    """The names under ``data_dir`` holding any entry not owned by ``uid``."""
    found = []
    for name in names:
        root = data_dir / name
        if root.exists() and any(p.lstat().st_uid != uid for p in _walk(root)):
            found.append(name)
    return found


def chown_command(data_dir: Path, names: Iterable[str], uid: int = SERVICE_UID) -> str:
    """``sudo chown -R 1000:1000 <data>/data ...`` for ``names``; empty when there are none (pure)."""
    import shlex

    paths = [shlex.quote(str(data_dir / name)) for name in names]
    return f"sudo chown -R {uid}:{uid} {' '.join(paths)}" if paths else ""


def restore(archive_path: Path | str, start: bool = True, keep_previous: bool = False) -> Path | None:
    """Verify, keep a side copy, put the archive in place, fix ownership, start and check health."""
    from . import versions
    from .settings import env_file_path, load
    from .stack import Stack

    env_file = env_file_path()
    try:
        current = load() if env_file.is_file() else None
    except StackError:
        current = None  # broken current settings are replaced by the archive's
    checked = verify(Path(archive_path).expanduser().resolve())
    manifest = checked.manifest
    problem = release_problem(manifest, checked.settings_text, versions.known_versions())
    if problem:
        raise StackError(f"refusing {checked.path}: {problem}", "nothing was changed; use a kit that knows that release")
    target = target_settings(checked.settings_text or "", env_file)
    version = target["CLEARML_SERVER_VERSION"]
    images = {name: target.image(name) for name in IMAGE_KEYS} if version == manifest["server_version"] else {}
    mismatch = runtime_mismatch(manifest, version, images, target.overridden)
    if mismatch:
        raise StackError(f"refusing {checked.path}: after the restore another release would run on its data:\n  "
                         + "\n  ".join(mismatch),
                         "nothing was changed; do what each line says and run `inv restore` again (an upgrade "
                         "comes after the restore: `inv upgrade`)")
    for s in filter(None, (current, target)):
        running = _running(s)
        if running:
            raise StackError(f"the stack {s.project!r} is running ({', '.join(running)}): a restore would replace "
                             "its data under it", "stop it first with `inv down`, then run `inv restore` again")
    totals = manifest["totals"]
    ui.ok(f"verified {checked.path.name}: server {manifest['server_version']}, made {manifest['created']}, "
          f"{totals['files']} files, {totals['bytes'] / 2**20:.1f} MiB, every checksum matches")

    data_dir = target.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    staging = data_dir / f".restore-staging-{stamp}"
    side_path = data_dir / f"pre-restore-{stamp}"
    staging.mkdir(mode=0o700)
    try:
        extract(checked, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # from here on: swap (renames in one directory), then the two small files
    side_path.mkdir(mode=0o700)
    moved = []
    for name in ARCHIVED_DIRS:  # what the archive does not hold stays (e.g. tls/ with an older archive)
        if (data_dir / name).exists() and (staging / name).exists():
            os.replace(data_dir / name, side_path / name)
            moved.append(name)
    saved_settings = saved_users = None
    if env_file.is_file():
        saved_settings = side_path / SETTINGS_MEMBER
        shutil.copy2(env_file, saved_settings)
    if target.users_file.is_file():
        saved_users = side_path / USERS_MEMBER
        shutil.copy2(target.users_file, saved_users)
    side = SideCopy(side_path, tuple(moved), saved_settings, saved_users)
    for name in ARCHIVED_DIRS:
        if (staging / name).exists():
            os.replace(staging / name, data_dir / name)
    shutil.rmtree(staging, ignore_errors=True)
    atomic_write(env_file, checked.settings_text or "", 0o600)
    if checked.users_text is not None:
        atomic_write(target.users_file, checked.users_text, 0o600)
    if os.geteuid() == 0:
        changed = sum(chown_tree(data_dir / name) for name in CONTAINER_DIRS)
        ui.note(f"gave the restored data to uid {SERVICE_UID} ({changed} entries changed)")
    else:
        command = chown_command(data_dir, not_owned(data_dir, CONTAINER_DIRS))
        if command:
            ui.warn(f"not root: the restored data belongs to uid {os.geteuid()}, the containers run as uid "
                    f"{SERVICE_UID} and may not write it", f"run `{command}` before `inv up`")
    ui.ok(f"restored server {manifest['server_version']} data, config, settings and users; previous state in {side_path}")

    rollback = side.rollback_commands(data_dir, env_file, target.users_file)
    if not start:
        ui.note(f"not started (--no-start). Once `inv up` is healthy, delete the side copy: rm -rf {side_path}")
        ui.note("to put the previous state back instead: " + " && ".join(rollback))
        return side_path
    try:
        Stack(load()).up()
    except StackError as exc:
        raise StackError(f"the restored stack did not become healthy: {exc.message}\n  the previous state is kept in "
                         f"{side_path}", "fix what is reported and `inv up`, or go back with: " + " && ".join(rollback)) from None
    if keep_previous:
        ui.note(f"kept the previous state in {side_path} (--keep-previous); delete it when you no longer need it")
        return side_path
    shutil.rmtree(side_path)
    ui.ok(f"restored stack is healthy; removed the side copy {side_path}")
    return None
