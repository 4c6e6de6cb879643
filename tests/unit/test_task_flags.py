"""Every task's command line: flags invoke derives are well-formed, and every flag has help text."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest

from clearml_stack.tasks import ns

ROOT = Path(__file__).resolve().parents[2]
INV = Path(__import__("sys").executable).parent / "inv"


def all_tasks(collection=ns, prefix: str = ""):
    for name, task in collection.tasks.items():
        yield prefix + name, task
    for name, sub in collection.collections.items():
        yield from all_tasks(sub, f"{prefix}{name}.")


TASKS = dict(all_tasks())


def arguments(name: str):
    """The task's arguments with their help; on a copy, since invoke moves the help texts into them."""
    task = copy.copy(TASKS[name])
    task.help = dict(TASKS[name].help or {})
    return task.get_arguments()


@pytest.mark.parametrize("name", sorted(TASKS))
def test_short_flags_are_a_letter_or_digit(name):
    """invoke assigns short flags itself; with many flags it runs out of letters and picks "-3" or "--"."""
    for arg in arguments(name):
        shorts = [n for n in arg.names if len(n) == 1]
        assert all(s.isascii() and s.isalnum() for s in shorts), f"inv {name}: --{arg.names[0]} got -{shorts}"
        assert len(shorts) <= 1, arg.names


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_flag_has_help(name):
    for arg in arguments(name):
        assert arg.help, f"inv {name}: --{arg.names[0]} has no help text"


def test_client_config_help_shows_only_well_formed_flags():
    shown = subprocess.run([str(INV), "--help", "client-config"], capture_output=True, text=True, cwd=ROOT,
                           check=True).stdout
    options = [line.split()[0] for line in shown.splitlines() if line.startswith("  -")]
    assert "--s3-no-tls" in options and "--s3-endpoint=STRING" in options
    assert all(o.startswith("--") and len(o) > 3 for o in options), options
