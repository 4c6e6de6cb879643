"""Operations through the real CLI where no engine is needed: refusals change nothing."""

from __future__ import annotations

import pytest

from tests.kit import new_kit

pytestmark = pytest.mark.contract


def files(kit) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(kit.dir.rglob("*")) if p.is_file()}


def test_fresh_without_a_terminal_needs_yes(tmp_path) -> None:
    kit = new_kit(tmp_path)
    kit.inv("install")
    before = files(kit)
    proc = kit.inv("fresh", check=False)
    assert proc.returncode != 0 and "needs a confirmation" in proc.stderr and "--yes" in proc.stderr
    assert files(kit) == before


def test_upgrade_refuses_unknown_and_downgrade_and_plans_dry(tmp_path) -> None:
    kit = new_kit(tmp_path)
    kit.inv("install")
    before = files(kit)
    proc = kit.inv("upgrade", "--from", "1.15.0", check=False)
    assert proc.returncode != 0 and "unknown starting release '1.15.0'" in proc.stderr
    proc = kit.inv("upgrade", "--to", "1.17.1", check=False)
    assert proc.returncode != 0 and "downgrade" in proc.stderr
    proc = kit.inv("upgrade", "--from", "1.16.2", "--dry-run")
    assert "1.16.2 (Mongo 4.4) -> 2.3.0 (Mongo 7.0) in 3 hop(s)" in proc.stdout
    assert "already at 2.3.0" in kit.inv("upgrade").stdout
    assert files(kit) == before


def test_restore_of_a_missing_archive_says_so(tmp_path) -> None:
    kit = new_kit(tmp_path)
    kit.inv("install")
    proc = kit.inv("restore", str(tmp_path / "nope.tar.gz"), check=False)
    assert proc.returncode != 0 and "no backup archive" in proc.stderr
