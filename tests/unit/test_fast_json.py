"""The msgspec fast path gives the strict parser's document, or steps aside: never another answer.

Every body here goes through both: the fast path must return None wherever the strict
parser refuses, and otherwise a document equal to the strict one down to types and the sign
of zero; the ``data`` it wrote on the way (which records carry as it is) reads back to the same
data. Bodies are generated as JSON texts written several ways (compact, spaced, escaped),
then bent towards what orjson reads differently: duplicate keys, integers past 64 bits,
number spellings, escapes.
"""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bench import payloads
from tests.support import installed_or_skip
from tornado_ingest import fast_json
from tornado_ingest.errors import InvalidInput
from tornado_ingest.request import _parse_strictly, parse_json


@pytest.fixture(autouse=True)
def msgspec():
    """Without it there is no fast path to hold to the strict one: skipped on a laptop, a failure in CI."""
    return installed_or_skip("msgspec", "speedups")


keys = st.sampled_from(["a", "b", "id", "a:b", "\u00e9", 'q"', "x\\"]) | st.text(max_size=6)
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -0.0, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 1e308, 5e-324])
)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=16,
)
NUMBER_TEXTS = (
    "1E5", "1e+5", "1.50", "-0", "-0.0", "0e0", "1e-400", "1e400", "-1e400", "123456789012345678901234567890",
     "18446744073709551616", "-9223372036854775809", "9223372036854775807", "0.1000000000000000055511151231257827",
     "NaN", "Infinity", "01", "1.", ".5", "2.2250738585072011e-308", "4.9406564584124654e-324"
)  # fmt: skip
number_texts = st.sampled_from(NUMBER_TEXTS)


def same(left, right) -> bool:
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return struct.pack("<d", left) == struct.pack("<d", right) or (math.isnan(left) and math.isnan(right))
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[key], right[key]) for key in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right))
    return bool(left == right)


def assert_agrees(body: bytes) -> None:
    fast = fast_json.parse(body)
    try:
        strict = _parse_strictly(body, max_depth=1000)
    except InvalidInput:
        assert fast is None, "the fast path took a body the strict parser refuses: %r" % body[:200]
        return
    if fast is None:
        return
    assert same(fast.document, strict), "different documents for %r" % body[:200]
    if isinstance(strict, dict) and "data" in strict:  # the record carries these bytes: the same data, exactly
        assert fast.data_json is not None and same(_parse_strictly(fast.data_json, 1000), strict["data"])
    else:
        assert fast.data_json is None


def writings(value):
    yield json.dumps({"id": "api.data.in", "data": value, "x": value}, ensure_ascii=False)  # a data member
    yield json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    yield json.dumps(value)  # spaced, \\u escapes
    yield json.dumps(value, indent=1, ensure_ascii=False)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_document_written_any_way(value):
    for text in writings(value):
        try:
            assert_agrees(text.encode("utf-8"))
        except UnicodeEncodeError:
            pass  # a lone surrogate cannot be UTF-8: the body could not be sent


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(keys, scalars | number_texts), min_size=1, max_size=6), st.booleans())
def test_objects_with_duplicate_keys_and_odd_numbers(members, spaced):
    parts = []
    for key, value in members:
        text = value if isinstance(value, str) and value in NUMBER_TEXTS else json.dumps(value)
        parts.append("%s%s%s" % (json.dumps(key, ensure_ascii=False), ": " if spaced else ":", text))
    assert_agrees(("{" + (", " if spaced else ",").join(parts) + "}").encode("utf-8"))


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1,"a":2}',
        b'{"a" : 1 , "a" : 2}',
        b'{"a":1,"a":"\\u003a"}',  # the dropped colon made up by an escaped one
        b'{"a":{"b":1},"a":"x:y"}',
        b'{"a":18446744073709551616}',
        b'{"a":-9223372036854775809}',
        b'{"a":"18446744073709551616"}',
        b'{"a":1e400}',
        b'{"a":NaN}',
        b'\xef\xbb\xbf{"a":1}',
        b'{"a":"\\udc00"}',
        b'{"a":"\x01"}',
        b'{"a":"\xff"}',
        b"[" * 300 + b"]" * 300,
        b"null",
        b'{"a":1}  \n',
        b'{"data":[{"a":1,"a":2}]}',
        b'{"data":{"a":1},"data":{"a":1}}',
        b'{"data" : [ {"n" : 1E5, "m" : 18446744073709551616, "s" : "a:b\\/"} ] }',
    ],
)
def test_the_cases_orjson_reads_differently(body):
    assert_agrees(body)


def test_duplicates_step_aside_and_big_integers_stay_exact():
    for body in (b'{"a":1,"a":2}', b'{"a" : 1 , "a" : 2}', b'{"a":1,"a":"\\u003a"}', b'{"a":"\xff"}'):
        assert fast_json.parse(body) is None
    assert fast_json.parse(b'{"n":18446744073709551616,"m":-9223372036854775809}') == (
        {"n": 18446744073709551616, "m": -9223372036854775809},
        None,
    )
    assert fast_json.parse(b'{"data": [18446744073709551616]}').data_json == b"[18446744073709551616]"


def test_the_benchmark_batch_takes_the_fast_path():
    for events in (1, 100):
        body = payloads.body(events)
        parsed = fast_json.parse(body)
        assert parsed is not None and same(parsed.document, json.loads(body))
        assert parsed.data_json == json.dumps(json.loads(body)["data"], separators=(",", ":")).encode()
        spaced = json.dumps(json.loads(body)).encode()
        assert fast_json.parse(spaced) is not None


def test_parse_json_still_refuses_what_it_refused():
    with pytest.raises(InvalidInput, match="duplicate key 'a'"):
        parse_json(b'{"a":1,"a":2}', max_depth=20)
    assert parse_json(b'{"n":18446744073709551616}', max_depth=20) == {"n": 18446744073709551616}
    with pytest.raises(InvalidInput, match="nested too deep"):
        parse_json(b"[" * 21 + b"]" * 21, max_depth=20)
