"""Generated credentials: alphabet, length, never digits-only, existing values kept."""

from __future__ import annotations

import re

from clearml_stack import secrets as G
from clearml_stack.settings import SECRET_KEYS


def test_every_secret_key_gets_letters_and_digits_of_the_right_length():
    made = G.fill_missing({})
    assert set(made) == set(SECRET_KEYS)
    for key, value in made.items():
        if key in G.ACCESS_KEY_SETTINGS:
            assert re.fullmatch(r"[A-Z0-9]{30}", value), key
        else:
            assert re.fullmatch(r"[A-Za-z0-9]{64}", value), key
        assert not value.isdigit()


def test_values_differ_between_keys_and_runs():
    a, b = G.fill_missing({}), G.fill_missing({})
    assert len(set(a.values())) == len(a)
    assert not set(a.values()) & set(b.values())


def test_existing_values_are_never_replaced():
    present = {"CLEARML_AUTH_TOKEN_SECRET": "keepme" * 8}
    made = G.fill_missing(present)
    assert "CLEARML_AUTH_TOKEN_SECRET" not in made
    assert len(made) == len(SECRET_KEYS) - 1


def test_digits_only_draws_are_rejected(monkeypatch):
    draws = iter("1111" + "1a11")
    monkeypatch.setattr(G._random, "choice", lambda alphabet: next(draws))
    assert G.generate(4, "1a") == "1a11"
