"""Generated credentials: letters and digits only, never digits-only, never replacing one that exists."""

from __future__ import annotations

import secrets as _random
import string
from typing import Mapping

from .settings import SECRET_KEYS

#: access keys look like the server's own (30 chars, A-Z and 0-9); secrets are longer, mixed case
ACCESS_KEY_SETTINGS = frozenset(
    {
        "CLEARML_AGENT_ACCESS_KEY",
        "CLEARML_APISERVER_KEY",
        "CLEARML_FILESERVER_KEY",
        "CLEARML_WEBSERVER_KEY",
        "CLEARML_TESTS_KEY",
    }
)
KEY_ALPHABET = string.ascii_uppercase + string.digits
SECRET_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 30
SECRET_LENGTH = 64


def generate(length: int, alphabet: str) -> str:
    """A random string from ``alphabet`` that is never digits-only (HOCON would read a number)."""
    while True:
        value = "".join(_random.choice(alphabet) for _ in range(length))
        if not value.isdigit():
            return value


def generate_for(key: str) -> str:
    if key in ACCESS_KEY_SETTINGS:
        return generate(KEY_LENGTH, KEY_ALPHABET)
    return generate(SECRET_LENGTH, SECRET_ALPHABET)


def fill_missing(present: Mapping[str, str], keys: tuple[str, ...] = SECRET_KEYS) -> dict[str, str]:
    """New values for every key in ``keys`` that ``present`` lacks or has empty; existing ones are kept."""
    return {key: generate_for(key) for key in keys if not present.get(key)}
