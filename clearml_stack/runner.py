"""The one place that runs commands: each is printed exactly as run (``shlex.join``), then executed."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from typing import Mapping, Sequence

from . import ui
from .errors import StackError


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    check: bool = True,
    echo: bool = True,
    input: str | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Result:
    """Run ``argv`` (never through a shell). ``env`` adds to the current environment.

    ``capture`` collects stdout and stderr instead of passing them through; ``check`` turns a
    non-zero exit into a :class:`StackError`; ``echo=False`` is for silent probes only.
    """
    argv = tuple(str(a) for a in argv)
    if echo:
        ui.command(shlex.join(argv))
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(
            argv,
            env=full_env,
            cwd=cwd,
            input=input,
            text=True,
            capture_output=capture,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise StackError(f"{argv[0]} is not installed or not on PATH", f"install {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"`{shlex.join(argv)}` did not finish within {timeout:.0f}s", "check the engine") from exc
    result = Result(argv, proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and not result.ok:
        detail = (result.stderr or result.stdout).strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        raise StackError(f"`{shlex.join(argv)}` failed with exit code {result.returncode}{tail}",
                         "read the output above; `inv doctor` checks the usual causes")
    return result
