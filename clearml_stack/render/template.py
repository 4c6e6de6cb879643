"""``{{ name }}`` placeholders filled from a dict; a missing or unused value is a bug, not a blank."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from ..settings import KIT_ROOT

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace each ``{{ name }}`` with ``values[name]``; values must already be escaped for the format."""
    names = set(_PLACEHOLDER.findall(text))
    missing = names - set(values)
    unused = set(values) - names
    if missing or unused:
        raise KeyError(f"template placeholders missing={sorted(missing)} unused={sorted(unused)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def load(relative: str) -> str:
    """A template shipped with the kit, by path relative to the kit root."""
    return (KIT_ROOT / relative).read_text()


def fill_file(relative: str, values: Mapping[str, str]) -> str:
    return fill(load(relative), values)


def template_path(relative: str) -> Path:
    return KIT_ROOT / relative
