"""Escaping made for HOCON: every user- or setting-supplied value enters config text through here."""

from __future__ import annotations

import json
from typing import Iterable, Mapping


def string(value: str) -> str:
    """A HOCON quoted string (JSON string syntax): no substitution, no comment, no number parsing."""
    return json.dumps(value, ensure_ascii=False)


def boolean(value: bool) -> str:
    return "true" if value else "false"


def integer(value: int) -> str:
    return str(int(value))


def null_or_string(value: str | None) -> str:
    return "null" if not value else string(value)


def obj(fields: Mapping[str, str], indent: int = 0) -> str:
    """An object from already-rendered values; keys are quoted too."""
    pad = " " * (indent + 4)
    inner = "\n".join(f"{pad}{string(k)}: {v}" for k, v in fields.items())
    return "{\n" + inner + "\n" + " " * indent + "}"


def array(items: Iterable[str], indent: int = 0) -> str:
    """An array of already-rendered values, one per line."""
    items = list(items)
    if not items:
        return "[]"
    pad = " " * (indent + 4)
    return "[\n" + "\n".join(pad + item for item in items) + "\n" + " " * indent + "]"
