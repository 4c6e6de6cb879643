"""Known-bad values: secrets the upstream ClearML projects publish as defaults (a deny-list).

Anyone can read these in the public sources, so a deployment where one of them is in effect gives
system rights, forged logins or a known password to whoever reaches it. The security audit
(:mod:`clearml_stack.audit`) fails when any effective value equals one of them, and when a key listed
with ``in_effect_when_unset`` is missing (the server then falls back to the public default).

This is a list of values to refuse, keyed by the configuration path the server reads; it is not a
configuration file and nothing here is ever rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

SERVER = "clearml-server apiserver default secure.conf"
HELM = "clearml Helm chart default values"
DOCS = "clearml-docs example (the password '123456')"


@dataclass(frozen=True)
class PublicDefault:
    path: str  # configuration key as the server reads it (``*`` stands for a list index)
    value: str
    source: str
    in_effect_when_unset: bool = False  # the server's built-in default: leaving the key out keeps it


PUBLIC_DEFAULTS: tuple[PublicDefault, ...] = (
    # signing secrets: the token secret lets anyone forge a login token for any user
    PublicDefault("secure.http.session_secret.apiserver", "V8gcW3EneNDcNfO7G_TSUsWe7uLozyacc9_I33o7bxUo8rCN31VLRg",
                  SERVER, True),
    PublicDefault("secure.auth.token_secret", "Rq8FW84sSqVgq7WvBB_4EzNl9y8z8IGiDXX3C345_a5AZfcwZcwCIA", SERVER, True),
    PublicDefault("secure.auth.token_secret", "ymLh1ok5k5xNUQfS944Xdx9xjf0wueokqKM2dMZfHuH9ayItG2", HELM),
    # system credentials (role system: full rights over every company)
    PublicDefault("secure.credentials.apiserver.user_key", "62T8CP7HGBC6647XF9314C2VY67RJO", SERVER, True),
    PublicDefault("secure.credentials.apiserver.user_secret",
                  "gaOfhDX2-bpkeI7-cwEcaMuGijxaG2UG3jbIvg4DxmVGF0LNI7rgvCb1-ne38IlBo1w", SERVER, True),
    PublicDefault("secure.credentials.apiserver.user_key", "GGS9F4M6XB2DXJ5AFT9F", HELM),
    PublicDefault("secure.credentials.apiserver.user_secret", "2oGujVFhPfaozhpuz2GzQfA5OyxmMsR3WVJpsCR5hrgHFs20PO", HELM),
    PublicDefault("secure.credentials.fileserver.user_key", "GSQWPEKSKNKF354LC9V6BHXKTYFD5I", SERVER, True),
    PublicDefault("secure.credentials.fileserver.user_secret", "tuBXcGQBECsEhcNiK2kiWi750z9r8Z85XrQ9V0c24huTuCb2xf2X1nKG",
                  SERVER, True),
    PublicDefault("secure.credentials.fileserver.user_key", "XXCRJ123CEE2KSQ068WO", HELM),
    PublicDefault("secure.credentials.fileserver.user_secret", "YIy8EVAC7QCT4FtgitxAQGyW7xRHDZ4jpYlTE7HKiscpORl1hG",
                  HELM),
    PublicDefault("secure.credentials.webserver.user_key", "EYVQ385RW7Y2QQUH88CZ7DWIQ1WUHP", SERVER, True),
    PublicDefault("secure.credentials.webserver.user_secret",
                  "XhkH6a6ds9JBnM_MrahYyYdO-wS2bqFSm8gl-V0UZXH26Ydd6Eyi28TeBEoSr6Z3Bes", SERVER, True),
    # the default user (revoked in fixed-user mode, valid in an open server)
    PublicDefault("secure.credentials.tests.user_key", "EGRTCO8JMSIGI6S39GTP43NFWXDQOW", SERVER, True),
    PublicDefault("secure.credentials.tests.user_secret", "LPEJbGJ6bK4tujQcmrD3i1dbMBDdwUwelVa-LG0K0FFmY9bzH_H0Sw",
                  SERVER, True),
    PublicDefault("secure.credentials.tests.user_key", "ENP39EQM4SLACGD5FXB7", HELM),
    PublicDefault("secure.credentials.tests.user_secret", "lPcm0imbcBZ8mwgO7tpadutiS3gnJD05x9j7afwXPS35IKbpiQ", HELM),
    # the Helm chart's readiness probe pair (a user credential on Kubernetes deployments)
    PublicDefault("secure.credentials.readiness_probe.user_key", "GK4PRTVT3706T25K6BA1", HELM),
    # a fixed user whose stored hash is the documentation's example: its password is public
    PublicDefault("apiserver.auth.fixed_users.users.*.password",
                  "JDJiJDEyJDk3OHBFcHFlNEsxTkFoZDlPcGZsbC5sU1pmM3huZ1RpeHc0ay5WUjlzTzN5WE1WRXJrUmhp", DOCS),
)

#: every published value, for "does this value appear anywhere" scans
KNOWN_BAD_VALUES: frozenset[str] = frozenset(d.value for d in PUBLIC_DEFAULTS)

#: keys whose absence leaves the server's public default in effect
IN_EFFECT_WHEN_UNSET: tuple[str, ...] = tuple(dict.fromkeys(d.path for d in PUBLIC_DEFAULTS if d.in_effect_when_unset))

#: the fileserver reads only its own system pair; its built-in default (its own secure.conf) is the same
#: public pair as the apiserver's
FILESERVER_IN_EFFECT_WHEN_UNSET: tuple[str, ...] = (
    "secure.credentials.fileserver.user_key",
    "secure.credentials.fileserver.user_secret",
)


def match(value: object) -> PublicDefault | None:
    """The public default ``value`` equals, if any (non-strings never match)."""
    if not isinstance(value, str) or value not in KNOWN_BAD_VALUES:
        return None
    return next(d for d in PUBLIC_DEFAULTS if d.value == value)


def values_for(path: str) -> tuple[str, ...]:
    """Every public value published for ``path``."""
    return tuple(d.value for d in PUBLIC_DEFAULTS if d.path == path)


def bad_values(values: Iterable[tuple[str, object]]) -> list[tuple[str, PublicDefault]]:
    """``(where, value)`` pairs whose value is a public default, as ``(where, which default)``."""
    found = []
    for where, value in values:
        hit = match(value)
        if hit is not None:
            found.append((where, hit))
    return found
