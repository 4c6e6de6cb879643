"""The deny-list of public upstream defaults, and that the kit's rendered config avoids every one."""

from __future__ import annotations

from pyhocon import ConfigFactory

from clearml_stack import public_defaults as pd
from clearml_stack.install import install
from clearml_stack.render.server_config import render_secure
from clearml_stack.settings import load


def test_match_finds_published_values_only():
    token = next(d for d in pd.PUBLIC_DEFAULTS if d.path == "secure.auth.token_secret" and d.in_effect_when_unset)
    assert pd.match(token.value) == token
    assert pd.match("something else") is None
    assert pd.match(None) is None and pd.match(12) is None
    assert pd.values_for("secure.credentials.apiserver.user_key")  # server and Helm values
    assert len(pd.values_for("secure.credentials.apiserver.user_key")) == 2


def test_every_server_default_that_applies_when_unset_is_a_secret_the_kit_renders(tmp_path):
    environ = {"CLEARML_ENV_FILE": str(tmp_path / ".env")}
    install({}, environ)
    tree = ConfigFactory.parse_string(render_secure(load(environ)))
    for path in pd.IN_EFFECT_WHEN_UNSET:
        assert path.startswith("secure.")
        value = tree.get(path[len("secure."):])
        assert value and pd.match(value) is None, path
    assert set(pd.FILESERVER_IN_EFFECT_WHEN_UNSET) <= set(pd.IN_EFFECT_WHEN_UNSET)


def test_the_token_secret_and_system_pairs_are_covered():
    covered = set(pd.IN_EFFECT_WHEN_UNSET)
    for path in ("secure.auth.token_secret", "secure.http.session_secret.apiserver",
                 "secure.credentials.apiserver.user_key", "secure.credentials.apiserver.user_secret",
                 "secure.credentials.fileserver.user_key", "secure.credentials.fileserver.user_secret",
                 "secure.credentials.webserver.user_key", "secure.credentials.tests.user_secret"):
        assert path in covered


def test_bad_values_reports_where():
    value = pd.PUBLIC_DEFAULTS[0].value
    assert pd.bad_values([("a", "fine"), ("b", value)]) == [("b", pd.PUBLIC_DEFAULTS[0])]
