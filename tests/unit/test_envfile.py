"""`.env` editing: values round-trip through our writer and dotenv's reader; other lines are untouched."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from clearml_stack.envfile import parse_env, quote_value, set_values
from clearml_stack.errors import StackError


def test_set_values_keeps_comments_order_and_other_lines():
    text = "# keep me\nA=1\n\n# and me\nB=two\nexport C=3\n"
    out = set_values(text, {"B": "changed", "D": "new"})
    assert out == "# keep me\nA=1\n\n# and me\nB=changed\nexport C=3\nD=new\n"


def test_values_with_spaces_or_dollar_are_single_quoted():
    assert quote_value("plain-value_1.2:3") == "plain-value_1.2:3"
    assert quote_value("has space") == "'has space'"
    assert quote_value("pa$word") == "'pa$word'"


@pytest.mark.parametrize("bad", ["it's", "two\nlines", "back\\slash"])
def test_unwritable_values_are_refused(bad):
    with pytest.raises(StackError):
        quote_value(bad, "K")


safe_text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="'\\"), max_size=60)


@given(safe_text)
def test_any_writable_value_round_trips_through_dotenv(value):
    text = set_values("# header\nOTHER=x\n", {"KEY": value})
    parsed = parse_env(text)
    assert parsed["KEY"] == value
    assert parsed["OTHER"] == "x"


@given(safe_text, safe_text)
def test_setting_twice_replaces_in_place(first, second):
    text = set_values(set_values("", {"KEY": first}), {"KEY": second})
    assert text.count("KEY=") == 1 and parse_env(text)["KEY"] == second
