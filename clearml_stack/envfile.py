"""Reading and editing ``.env`` text the way both python-dotenv and docker compose read it.

Values are read with ``interpolate=False``: a ``$`` in a value is data, never a
variable. Values we write are bare when they are made of safe characters, and
single-quoted otherwise (single quotes are literal for compose and dotenv alike).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Mapping

from dotenv.parser import parse_stream

from .errors import StackError

_BARE = re.compile(r"^[A-Za-z0-9_./:@,+=-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str
    line: int


def parse_env(text: str, source: str = ".env") -> dict[str, str]:
    """Parse ``.env`` text into a dict; any line dotenv cannot read is an error naming the line."""
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line_text = binding.original.string.strip()
            raise StackError(
                f"{source} line {binding.original.line}: cannot read {line_text!r}",
                "write it as KEY=value (quote values with spaces in single quotes), or delete the line",
            )
        if binding.key is None:
            continue
        values[binding.key] = binding.value or ""
    return values


def quote_value(value: str, key: str = "value") -> str:
    """Render one value for a ``.env`` line that compose and dotenv read back unchanged."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise StackError(f"{key}: a value in .env cannot span lines", "use a single-line value")
    if _BARE.match(value):
        return value
    if "'" in value or "\\" in value:
        # compose reads single-quoted values literally, python-dotenv decodes \\ and \' in them:
        # only values without quotes and backslashes mean the same to both
        raise StackError(
            f"{key}: a value in .env cannot contain a single quote or a backslash ({value!r})",
            "choose a value without ' and \\",
        )
    return f"'{value}'"


def set_values(text: str, updates: Mapping[str, str]) -> str:
    """Return ``text`` with each key in ``updates`` set: in place if the key exists, appended otherwise.

    Comments, blank lines, order and every other line are kept exactly.
    """
    for key in updates:
        if not _KEY.match(key):
            raise StackError(f"invalid setting name {key!r}", "use letters, digits and underscores")
    remaining = dict(updates)
    out_lines: list[str] = []
    for line in text.splitlines(keepends=True):
        match = re.match(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)(\s*=)", line)
        if match and match.group(2) in remaining:
            key = match.group(2)
            ending = "\n" if line.endswith("\n") else ""
            out_lines.append(f"{match.group(1)}{key}={quote_value(remaining.pop(key), key)}{ending}")
        else:
            out_lines.append(line)
    result = "".join(out_lines)
    if remaining:
        if result and not result.endswith("\n"):
            result += "\n"
        result += "".join(f"{k}={quote_value(v, k)}\n" for k, v in remaining.items())
    return result
