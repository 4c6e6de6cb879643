"""The plain-HTTP client's pure parts: answers, multipart bodies, object paths, credentials."""

from __future__ import annotations

import base64
import email.parser
import email.policy

import pytest
from hypothesis import given, strategies as st

from clearml_stack.apiclient import Answer, Credentials, multipart, parse_answer


def test_parse_answer_reads_the_api_envelope():
    a = parse_answer(401, b'{"meta": {"result_code": 401, "result_msg": "Unauthorized (invalid credentials)",'
                          b' "result_subcode": 20}, "data": {}}')
    assert not a.ok and a.describe() == "HTTP 401: Unauthorized (invalid credentials) (20)"
    b = parse_answer(200, b'{"meta": {"result_msg": "OK"}, "data": {"token": "abc"}}')
    assert b.ok and b.data == {"token": "abc"}


def test_parse_answer_quotes_a_non_api_body():
    a = parse_answer(502, b"<html><body>\n  Bad   Gateway </body></html>")
    assert a.describe() == "HTTP 502: <html><body> Bad Gateway </body></html>"
    assert Answer(0, message="Connection refused").describe() == "no answer (Connection refused)"


@given(st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\"), min_size=1,
               max_size=30).filter(lambda s: s.strip()),
       st.binary(max_size=2000))
def test_multipart_round_trips_through_a_standard_parser(name, content):
    body, content_type = multipart(name, name, content)
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    (part,) = list(msg.iter_parts())
    assert part.get_payload(decode=True) == content
    assert part.get_param("name", header="content-disposition") == name.replace('"', "%22")


@pytest.mark.parametrize("name", ["a\\b", "line\nbreak", "nul\0"])
def test_multipart_refuses_names_parsers_disagree_on(name):
    with pytest.raises(ValueError):
        multipart(name, "f", b"")


def test_credentials_make_a_basic_header_and_hide_the_secret():
    c = Credentials("alice", "pä:ss", "web user")
    assert base64.b64decode(c.basic_header()[6:]).decode() == "alice:pä:ss"
    assert "pä:ss" not in repr(c)
