"""Extra release rows (CLEARML_EXTRA_RELEASES): how private builds and tests add releases."""

from __future__ import annotations

import json

import pytest

from clearml_stack import versions
from clearml_stack.errors import StackError
from clearml_stack.settings import problems, defaults

ROW = {"version": "90.1.0", "server_repo": "local/server", "server_tag": "abc", "mongo_tag": "abc-6.0",
       "elastic_tag": "abc", "redis_tag": "abc", "mongo_series": "6.0"}


def test_version_key_orders_builds_and_rejects_names() -> None:
    assert versions.version_key("1.17.1-554") > versions.version_key("1.17.1")
    assert versions.version_key("2.10.0") > versions.version_key("2.9.9")
    with pytest.raises(ValueError):
        versions.version_key("latest")


def test_extra_rows_join_the_table_and_the_settings_check(tmp_path, monkeypatch) -> None:
    path = tmp_path / "extra.json"
    path.write_text(json.dumps([ROW]))
    monkeypatch.setenv(versions.EXTRA_RELEASES_ENV, str(path))
    assert "90.1.0" in versions.known_versions()
    r = versions.release("90.1.0")
    assert r is not None and r.series == "6.0" and r.server_repo == "local/server"
    assert problems({**defaults(), "CLEARML_SERVER_VERSION": "90.1.0"}) == []
    monkeypatch.delenv(versions.EXTRA_RELEASES_ENV)
    assert versions.release("90.1.0") is None
    assert any("90.1.0" in p for p in problems({**defaults(), "CLEARML_SERVER_VERSION": "90.1.0"}))


def test_the_shipped_table_never_contains_test_rows() -> None:
    assert all(versions.version_key(r.version) < (50, 0, 0, 0) for r in versions.RELEASES)


@pytest.mark.parametrize("text,match", [
    ("not json", "not valid JSON"),
    ("{}", "must be an object"),
    (json.dumps([{"version": "1.0.0"}]), "must be an object"),
    (json.dumps([{**ROW, "colour": "red"}]), "must be an object"),
    (json.dumps([{**ROW, "version": "nine"}]), "not a release number"),
])
def test_bad_extra_rows_are_refused(text: str, match: str) -> None:
    with pytest.raises(StackError, match=match):
        versions.parse_extra(text)


def test_extra_rows_may_not_replace_shipped_ones(tmp_path, monkeypatch) -> None:
    path = tmp_path / "extra.json"
    path.write_text(json.dumps([{**ROW, "version": "2.3.0"}]))
    monkeypatch.setenv(versions.EXTRA_RELEASES_ENV, str(path))
    with pytest.raises(StackError, match="repeats releases"):
        versions.all_releases()


def test_an_unreadable_extra_file_names_the_variable(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(versions.EXTRA_RELEASES_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(StackError, match=versions.EXTRA_RELEASES_ENV):
        versions.all_releases()
