"""Atomic writes: a failed rename leaves the old file whole and no temp file behind; modes are exact;
exclusive publishing never replaces a file."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from clearml_stack import fsutil


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_failed_rename_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "secrets.env"
    target.write_text("OLD=1\n")
    os.chmod(target, 0o600)
    seen: list[str] = []

    def failing_replace(src, dst):
        seen.append(os.fspath(src))
        assert os.path.exists(src) and open(src).read() == "NEW=2\n", "the temp file holds the whole new text"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        fsutil.atomic_write(target, "NEW=2\n", 0o600)
    assert seen and os.path.dirname(seen[0]) == str(tmp_path), "the temp file sits beside the target"
    assert target.read_text() == "OLD=1\n" and mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.env"], "no temp file is left"


def test_failed_write_of_a_new_file_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(fsutil.os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError):
        fsutil.atomic_write(tmp_path / "new.conf", b"data", 0o644)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("wanted", [0o600, 0o644, 0o755])
def test_mode_is_exact_and_set_before_the_rename(tmp_path, monkeypatch, wanted):
    target = tmp_path / "file"
    target.write_text("old")
    os.chmod(target, 0o666)
    real_replace = os.replace
    modes_at_rename: list[int] = []

    def watching_replace(src, dst):
        modes_at_rename.append(mode(src))
        real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", watching_replace)
    old_umask = os.umask(0o077)  # a strict umask must not change the mode asked for
    try:
        fsutil.atomic_write(target, "new text", wanted)
    finally:
        os.umask(old_umask)
    assert modes_at_rename == [wanted], "the file never appears at its path with another mode"
    assert target.read_text() == "new text" and mode(target) == wanted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_write_if_changed_only_fixes_the_mode_when_the_text_is_the_same(tmp_path):
    target = tmp_path / "apiserver.conf"
    assert fsutil.write_if_changed(target, "a = 1\n", 0o600) is True
    inode = target.stat().st_ino
    os.chmod(target, 0o644)
    assert fsutil.write_if_changed(target, "a = 1\n", 0o600) is False
    assert mode(target) == 0o600 and target.stat().st_ino == inode
    assert fsutil.write_if_changed(target, "a = 2\n", 0o600) is True and target.read_text() == "a = 2\n"


# --- exclusive: publish only where nothing exists -------------------------------------------------


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_exclusive_write_creates_a_new_file(tmp_path):
    path = tmp_path / "clearml.conf"
    fsutil.atomic_write(path, "secret\n", 0o600, exclusive=True)
    assert path.read_text() == "secret\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_nlink == 1, "the temp name is gone"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("existing", ["file", "symlink", "dangling-symlink"])
def test_exclusive_write_never_replaces_what_appeared_meanwhile(tmp_path, existing):
    path = tmp_path / "clearml.conf"
    target = tmp_path / "elsewhere"
    if existing == "file":
        path.write_text("someone else's\n")
    elif existing == "symlink":
        target.write_text("someone else's\n")
        path.symlink_to(target)
    else:
        path.symlink_to(target)
    with pytest.raises(FileExistsError):
        fsutil.atomic_write(path, "ours\n", 0o600, exclusive=True)
    if existing != "dangling-symlink":
        assert path.read_text() == "someone else's\n"
    else:
        assert not target.exists(), "nothing is written through a dangling link"
    assert leftovers(tmp_path) == []


def test_exclusive_write_without_hard_links_still_refuses_an_existing_file(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "connect.sh"
    fsutil.atomic_write(path, "#!/bin/sh\n", 0o755, exclusive=True)
    assert path.read_text() == "#!/bin/sh\n" and stat.S_IMODE(path.stat().st_mode) == 0o755
    with pytest.raises(FileExistsError):
        fsutil.atomic_write(path, "other\n", 0o755, exclusive=True)
    assert path.read_text() == "#!/bin/sh\n" and leftovers(tmp_path) == []
