"""Tests never change the host: `inv doctor --fix` run through the test kit writes only the kit's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit import new_kit

pytestmark = pytest.mark.contract


def test_doctor_fix_through_the_kit_leaves_the_host_alone(tmp_path) -> None:
    host_value = Path("/proc/sys/vm/max_map_count").read_text()
    host_conf = Path("/etc/sysctl.d/99-clearml.conf")
    host_conf_before = host_conf.read_bytes() if host_conf.exists() else None
    kit = new_kit(tmp_path)
    kit.inv("install")
    kit.inv("doctor", "--fix", check=False)
    assert Path("/proc/sys/vm/max_map_count").read_text() == host_value
    assert (host_conf.read_bytes() if host_conf.exists() else None) == host_conf_before
    env = kit.environ()
    assert Path(env["CLEARML_SYSCTL_FILE"]).is_relative_to(tmp_path)
    assert Path(env["CLEARML_PROC_MAX_MAP_COUNT"]).is_relative_to(tmp_path)
