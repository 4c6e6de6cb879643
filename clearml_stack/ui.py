"""All colour, tables and message formatting in one place.

Data goes to stdout; chatter (progress, notes, warnings) goes to stderr.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, Sequence, TextIO

_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}


def _use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def paint(text: str, colour: str, stream: TextIO | None = None) -> str:
    """Wrap ``text`` in an ANSI colour when ``stream`` is a terminal."""
    stream = stream or sys.stderr
    if not _use_colour(stream):
        return text
    return f"\033[{_CODES[colour]}m{text}\033[0m"


def say(message: str) -> None:
    """Progress or a note, on stderr."""
    print(message, file=sys.stderr, flush=True)


def ok(message: str) -> None:
    say(paint("ok ", "green") + message)


def note(message: str) -> None:
    say(paint("-- ", "blue") + message)


def warn(message: str, fix: str = "") -> None:
    say(paint("warning: ", "yellow") + message + (f"\n  fix: {fix}" if fix else ""))


def error(message: str, fix: str = "") -> None:
    say(paint("error: ", "red") + message + (f"\n  fix: {fix}" if fix else ""))


def command(argv_text: str) -> None:
    """Echo a command exactly as it is about to run."""
    say(paint("$ " + argv_text, "dim"))


def out(text: str = "") -> None:
    """Data for the user or another program, on stdout."""
    print(text, flush=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain aligned text table (pure: returns the text)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def mask(value: str) -> str:
    """Show that a secret exists without showing it."""
    return "********" if value else "(unset)"
