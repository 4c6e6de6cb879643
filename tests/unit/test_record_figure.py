"""Measured figures recorded by tests appear in the run's terminal summary, not in captured output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_recorded_figures_show_in_the_terminal_summary(tmp_path):
    (tmp_path / "test_measures.py").write_text(
        "def test_slow_thing(record_figure):\n"
        "    print('captured and not shown')\n"
        "    record_figure('recovery time', 3.14159, 's')\n"
        "    record_figure('reconnects', 3)\n"
    )
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_measures.py")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = proc.stdout.split("measured figures", 1)[1]
    assert "recovery time: 3.1s   (test_measures.py::test_slow_thing)" in summary
    assert "reconnects: 3   (test_measures.py::test_slow_thing)" in summary
    assert "captured and not shown" not in proc.stdout
