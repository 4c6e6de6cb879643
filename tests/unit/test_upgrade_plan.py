"""The upgrade planner: every start/target pair of the shipped table and of a synthetic one."""

from __future__ import annotations

import itertools

import pytest

from clearml_stack import versions
from clearml_stack.errors import StackError
from clearml_stack.upgrade import SERIES, describe, pinned_images, plan
from clearml_stack.versions import RELEASES, Release, version_key


def rel(version: str, series: str, verified: bool = True, hop: bool = True) -> Release:
    return Release(version, "example/server", version, f"{series}.1", "8.17.0", "7.4.1", mongo_series=series,
                   verified=verified, hop=hop)


SYNTHETIC = (
    rel("1.10.0", "4.4", hop=False),
    rel("1.16.0", "4.4"),
    rel("1.17.0", "5.0"),
    rel("1.17.1", "5.0"),
    rel("2.0.0", "6.0"),
    rel("2.1.0", "6.0", verified=False),
    rel("2.2.0", "6.0"),
    rel("2.3.0", "7.0"),
    rel("2.4.0", "7.0"),
    rel("3.0.0", "8.0"),
)


def check_plan(table, start: Release, target: Release) -> None:
    """The properties every plan must have, whatever the pair."""
    p = plan(start.version, target.version, table)
    if start.version == target.version:
        assert p.hops == ()
        return
    got = [h.release for h in p.hops]
    assert got[-1] == target, "the walk ends at the target"
    keys = [version_key(r.version) for r in [start, *got]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), "versions strictly increase"
    series = [SERIES.index(r.series) for r in [start, *got]]
    for a, b in zip(series, series[1:]):
        assert b - a in (0, 1), f"a Mongo series was skipped: {[r.series for r in [start, *got]]}"
    assert all(r.hop for r in got), "starting-point-only rows are never started"
    # exactly one hop per series strictly between start and target
    between = SERIES[SERIES.index(start.series) + 1:SERIES.index(target.series)]
    assert [r.series for r in got[:-1]] == list(between)


@pytest.mark.parametrize("start,target", list(itertools.product(RELEASES, RELEASES)),
                         ids=lambda r: r.version)
def test_every_pair_of_the_shipped_table(start: Release, target: Release) -> None:
    if version_key(target.version) < version_key(start.version):
        with pytest.raises(StackError, match="downgrade"):
            plan(start.version, target.version, RELEASES)
    elif not target.hop:
        with pytest.raises(StackError, match="starting point"):
            plan(start.version, target.version, RELEASES)
    else:
        check_plan(RELEASES, start, target)


@pytest.mark.parametrize("start,target", list(itertools.product(SYNTHETIC, SYNTHETIC)), ids=lambda r: r.version)
def test_every_pair_of_a_synthetic_table(start: Release, target: Release) -> None:
    if version_key(target.version) < version_key(start.version):
        with pytest.raises(StackError, match="downgrade"):
            plan(start.version, target.version, SYNTHETIC)
    elif not target.hop:
        with pytest.raises(StackError, match="starting point"):
            plan(start.version, target.version, SYNTHETIC)
    else:
        check_plan(SYNTHETIC, start, target)


def test_the_documented_path_from_mongo_44_to_70() -> None:
    p = plan("1.16.2", "2.3.0", RELEASES)
    assert p.versions == ["1.17.1", "2.0.0", "2.3.0"]
    assert [h.release.series for h in p.hops] == ["5.0", "6.0", "7.0"]


def test_same_series_goes_straight_to_the_target() -> None:
    assert plan("1.17.0", "1.17.1", SYNTHETIC).versions == ["1.17.1"]
    assert plan("2.0.0", "2.2.0", SYNTHETIC).versions == ["2.2.0"]
    assert plan("2.0.0", "2.4.0", SYNTHETIC).versions == ["2.4.0"]


def test_the_newest_verified_release_of_a_series_is_the_hop() -> None:
    # 2.2.0 is the newest verified 6.0 row, 1.17.1 the newest 5.0 row
    assert plan("1.16.0", "2.4.0", SYNTHETIC).versions == ["1.17.1", "2.2.0", "2.4.0"]
    unverified_newest = SYNTHETIC + (rel("2.2.5", "6.0", verified=False),)
    assert plan("1.16.0", "2.3.0", unverified_newest).versions == ["1.17.1", "2.2.0", "2.3.0"]


def test_hops_never_leave_the_start_target_range() -> None:
    # from 2.1.0 (6.0) to 3.0.0 (8.0): the 7.0 hop must be after 2.1.0
    assert plan("2.1.0", "3.0.0", SYNTHETIC).versions == ["2.4.0", "3.0.0"]


def test_same_version_is_nothing_to_do() -> None:
    p = plan("2.3.0", "2.3.0", RELEASES)
    assert p.hops == ()
    assert describe(p) == ["already at 2.3.0: nothing to do"]


@pytest.mark.parametrize("start,target", [("2.3.0", "1.17.1"), ("2.3.0", "2.0.0"), ("1.17.1", "1.16.2")])
def test_downgrades_are_refused_with_the_way_back(start: str, target: str) -> None:
    with pytest.raises(StackError) as err:
        plan(start, target, RELEASES)
    assert "downgrade" in err.value.message and "inv restore" in err.value.fix


@pytest.mark.parametrize("start,target,role", [
    ("1.15.0", "2.3.0", "starting"), ("2.2.0", "2.3.0", "starting"), ("2.3.0", "9.9.9", "target"),
    ("latest", "2.3.0", "starting"), ("1.16.2", "", "target"),
])
def test_unknown_versions_are_refused_naming_the_known_ones(start: str, target: str, role: str) -> None:
    with pytest.raises(StackError) as err:
        plan(start, target, RELEASES)
    assert f"unknown {role} release" in err.value.message
    for known in ("1.16.2", "1.17.1", "2.0.0", "2.3.0"):
        assert known in err.value.message
    assert "Mongo 6.0" in err.value.fix  # tells which row stands for a release in between


@pytest.mark.parametrize("start,row,series", [("1.17.0", "1.17.1", "5.0"), ("2.1.3", "2.0.0", "6.0"),
                                              ("2.2.0", "2.0.0", "6.0")])
def test_an_unknown_start_is_pointed_at_the_row_of_the_same_mongo_series(start, row, series) -> None:
    """1.17.0 runs Mongo 5.0: the row to name is 1.17.1, not the nearest lower row (1.16.2, Mongo 4.4)."""
    with pytest.raises(StackError) as err:
        plan(start, "2.3.0", RELEASES)
    assert f"runs Mongo {series}" in err.value.fix and f"--from {row}" in err.value.fix
    assert "nearest lower" not in err.value.fix and "--from 1.16.2" not in err.value.fix
    plan(row, "2.3.0", RELEASES)  # and the named row is one the planner takes


@pytest.mark.parametrize("start", ["1.15.0", "0.17.0", "latest"])
def test_an_unknown_start_the_docs_do_not_place_lists_every_row(start) -> None:
    with pytest.raises(StackError) as err:
        plan(start, "2.3.0", RELEASES)
    assert "--from" not in err.value.fix and "same Mongo series" in err.value.fix
    for known, series in (("1.16.2", "4.4"), ("1.17.1", "5.0"), ("2.0.0", "6.0"), ("2.3.0", "7.0")):
        assert f"{known} run Mongo {series}" in err.value.fix


def test_an_unknown_start_newer_than_the_table_is_not_mapped_to_an_older_server() -> None:
    with pytest.raises(StackError) as err:
        plan("2.4.1", "2.3.0", RELEASES)
    assert "newer than every release" in err.value.fix and "--from 2.3.0" not in err.value.fix


def test_a_missing_series_is_refused_not_skipped() -> None:
    table = (rel("1.16.0", "4.4"), rel("2.0.0", "6.0"))
    with pytest.raises(StackError, match="no release on Mongo 5.0"):
        plan("1.16.0", "2.0.0", table)


def test_a_starting_point_only_row_is_never_a_target() -> None:
    with pytest.raises(StackError, match="starting point"):
        plan("1.10.0", "1.10.0", SYNTHETIC)


def test_describe_names_every_step_and_flags_unverified_rows() -> None:
    lines = describe(plan("1.16.2", "2.3.0", RELEASES), "/x/.env")
    text = "\n".join(lines)
    assert "back up" in lines[1]
    assert text.index("1.17.1:") < text.index("2.0.0:") < text.index("2.3.0:")
    assert "allegroai/clearml:1.17.1-554, mongo:5.0.26, elasticsearch:8.15.3, redis:6.2" in text
    assert "2.0.0-613" in text and "[some tags unverified]" in text.split("2.0.0:")[1].splitlines()[0]
    assert "CLEARML_SERVER_VERSION=2.3.0 in /x/.env" in text
    assert "rollback" in lines[-1]


def test_the_shipped_table_is_consistent() -> None:
    versions_ = [r.version for r in RELEASES]
    assert versions_ == sorted(versions_, key=version_key), "rows are in release order"
    series = [SERIES.index(r.series) for r in RELEASES]
    assert series == sorted(series), "a newer release never runs an older Mongo series"
    assert versions.DEFAULT_VERSION in versions_
    assert versions.release(versions.DEFAULT_VERSION).verified
    # the documented Mongo series of each release line
    assert {r.version: r.series for r in RELEASES} == {"1.16.2": "4.4", "1.17.1": "5.0", "2.0.0": "6.0", "2.3.0": "7.0"}
    for r in RELEASES:
        assert r.source, f"{r.version} says where its tags come from"
        assert "latest" not in (r.server_tag, r.mongo_tag, r.elastic_tag, r.redis_tag)


def test_pinned_image_tags_are_found() -> None:
    class S:
        values = {"CLEARML_SERVER_IMAGE": "reg:5000/clearml/server", "MONGO_IMAGE": "mongo:6.0.19",
                  "ELASTIC_IMAGE": "reg/es@sha256:abc", "REDIS_IMAGE": ""}

    assert pinned_images(S()) == ["MONGO_IMAGE", "ELASTIC_IMAGE"]
