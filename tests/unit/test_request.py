"""Body decoding and the request rules, below the HTTP layer."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, settings, strategies as st

from tornado_ingest.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from tornado_ingest.request import (
    check_content_type,
    gunzip,
    is_gzipped,
    nested_deeper_than,
    parse_json,
    request_msgid,
    validate_request,
)


def test_gunzip_reads_every_member():
    assert gunzip(gzip.compress(b'{"a":') + gzip.compress(b"1}"), 100) == b'{"a":1}'


def test_gunzip_stops_at_the_limit():
    with pytest.raises(PayloadTooLarge):
        gunzip(gzip.compress(b"x" * 101), 100)
    assert gunzip(gzip.compress(b"x" * 100), 100) == b"x" * 100


@pytest.mark.parametrize("body", [b"", b"not gzip", gzip.compress(b"{}")[:-5]])
def test_gunzip_refuses_broken_streams(body):
    with pytest.raises(InvalidInput, match="not valid gzip"):
        gunzip(body, 100)


@pytest.mark.parametrize(
    "value, gzipped", [(None, False), ("identity", False), ("gzip", True), ("GZIP", True), ("x-gzip", True)]
)
def test_encodings(value, gzipped):
    assert is_gzipped(value) is gzipped


def test_charset_must_be_utf8():
    check_content_type('application/json; charset="UTF-8"')
    with pytest.raises(UnsupportedMediaType, match="charset"):
        check_content_type("application/json; charset=utf-16")


def test_depth_limit_is_exact():
    ten_deep: list = []
    for _ in range(9):
        ten_deep = [ten_deep]
    assert parse_json(b"[" * 10 + b"]" * 10, max_depth=10) == ten_deep
    with pytest.raises(InvalidInput, match="nested too deep"):
        parse_json(b"[" * 11 + b"]" * 11, max_depth=10)


def test_a_utf8_bom_is_tolerated():
    assert parse_json(b"\xef\xbb\xbf{}", 10) == {}


def test_msgid_is_found_only_when_usable():
    assert request_msgid({"params": {"msgid": "m"}}) == "m"
    assert request_msgid({"params": {"msgid": ""}}) is None
    assert request_msgid({"params": "x"}) is None
    assert request_msgid([]) is None


def test_several_problems_are_reported_in_field_order():
    with pytest.raises(InvalidInput) as caught:
        validate_request({"data": 1, "ver": 1})
    message = caught.value.message
    assert (
        message.index("id:")
        < message.index("ver:")
        < message.index("ts:")
        < message.index("params:")
        < message.index("data:")
    )


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(child) for child in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(child) for child in value), default=0)
    return 0


_tricky_text = st.text(alphabet=st.sampled_from(list('{}[]"\\/ab\n\u00e9')), max_size=12)
_values = st.recursive(
    st.none() | st.integers() | _tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_tricky_text, inner, max_size=3),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(_values, st.integers(min_value=1, max_value=8), st.booleans())
def test_depth_on_the_bytes_matches_the_parsed_depth(value, max_depth, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only, indent=None if max_depth % 2 else 1).encode("utf-8")
    assert nested_deeper_than(body, max_depth) == (_depth(value) > max_depth)


@pytest.mark.parametrize("depth", range(1, 14))
@pytest.mark.parametrize("max_depth", [1, 2, 5, 6, 7, 12])
def test_depth_of_alternating_arrays_and_objects_at_the_limit(depth, max_depth):
    # [{"a":[{"a":...}]}]: the fast peel takes two levels a round here, the exact one settles the rest
    value: object = 0
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    body = json.dumps(value).encode()
    assert nested_deeper_than(body, max_depth) == (depth > max_depth)
