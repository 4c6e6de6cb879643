"""Atomic file writes with explicit modes: nothing half-written, nothing world-readable by accident."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

SERVICE_UID = 1000  # the ClearML containers (and Elasticsearch) run as uid/gid 1000


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` through a temp file and rename, with ``mode`` set before the rename.

    ``exclusive``: publish only if ``path`` does not exist at that moment (a hard link, which never
    replaces anything); otherwise :class:`FileExistsError`, and ``path`` is left as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        _write_synced(fd, payload)
        os.chmod(tmp, mode)
        if exclusive:
            _publish_new(Path(tmp), path, payload, mode)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_synced(fd: int, payload: bytes) -> None:
    """Write ``payload`` to the open file ``fd``, flushed to disk, and close it."""
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def _publish_new(tmp: Path, path: Path, payload: bytes, mode: int) -> None:
    """Give the finished temp file the name ``path`` only if nothing has that name (FileExistsError else)."""
    try:
        os.link(tmp, path)  # atomic, and never replaces an existing file
    except FileExistsError:
        raise
    except OSError as exc:  # a file system without hard links: O_EXCL is exclusive too, if not all-at-once
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            _write_synced(fd, payload)
            os.chmod(path, mode)
        except BaseException:
            path.unlink(missing_ok=True)  # the file is ours (O_EXCL): no half-written file stays behind
            raise
    tmp.unlink()


def write_if_changed(path: Path, text: str, mode: int = 0o600) -> bool:
    """Atomically write ``text`` unless the file already holds it; fix the mode either way.

    Returns True when the content changed.
    """
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        if (path.stat().st_mode & 0o777) != mode:
            os.chmod(path, mode)
        return False
    atomic_write(path, text, mode)
    return True


def give_to_service_user(path: Path) -> bool:
    """chown ``path`` to uid/gid 1000 when we are root (containers read it as that user).

    Returns True when ownership was changed.
    """
    if os.geteuid() != 0:
        return False
    st = Path(path).stat()
    if (st.st_uid, st.st_gid) == (SERVICE_UID, SERVICE_UID):
        return False
    os.chown(path, SERVICE_UID, SERVICE_UID)
    return True


def hash_files(directories: list[Path]) -> str:
    """A short hash of the names and contents of the files directly in ``directories`` (missing ones count as empty).

    Compose files carry it as a label, so `up` recreates a container whose mounted config changed.
    """
    digest = hashlib.sha256()
    for directory in directories:
        if Path(directory).is_dir():
            for path in sorted(Path(directory).iterdir()):
                if path.is_file():
                    digest.update(path.name.encode() + b"\0")
                    try:
                        digest.update(path.read_bytes())
                    except PermissionError:
                        digest.update(str(path.stat().st_mtime_ns).encode())
                    digest.update(b"\0")
    return digest.hexdigest()[:16]
