"""Both JSON back ends give the same answers: orjson (speedups) and the standard library."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from tornado_ingest import jsoncodec

DOCUMENTS = [
    {"a": 1, "b": [1.5, -2, None, True], "c": {"é": 'ü\n"x"\u0000'}},
    {"big": 10**30, "neg": -(2**70), "f": 1e16, "small": 5e-324},
    {"s": "\u2028\u2029\x7f", "emoji": "\U0001f600"},
]


@pytest.fixture(params=["orjson", "stdlib"])
def codec(request, monkeypatch):
    if request.param == "orjson":
        if jsoncodec.orjson is None:
            pytest.skip("orjson is not installed (the speedups extra)")
    else:
        monkeypatch.setattr(jsoncodec, "orjson", None)
        monkeypatch.setattr(jsoncodec, "_orjson_canonical", False)  # as decided at import without orjson
    return jsoncodec


@pytest.mark.parametrize("document", DOCUMENTS)
def test_round_trip(codec, document):
    encoded = codec.dumps(document)
    assert b"\n" not in encoded
    assert json.loads(encoded.decode("utf-8")) == document


def test_lone_surrogate_raises(codec):
    with pytest.raises(UnicodeEncodeError):
        codec.dumps({"x": "\ud800"})


def test_key_order_is_kept(codec):
    assert codec.dumps({"z": 1, "a": 2}) == b'{"z":1,"a":2}'


# canonical: the idempotency digest's bytes, which must stay the standard library's from release to release


def standard_canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


canonical_keys = st.sampled_from(["a", "B", "_", "a b", "aa", "\u00e9", "\x7f", "e-5"]) | st.text(max_size=6)
canonical_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-11, max_value=1e-3)  # where orjson writes floats its own way
    | st.floats(min_value=-1e-3, max_value=-1e-11)
    | st.text(alphabet=st.characters(max_codepoint=0x80), max_size=8)
    | st.text(max_size=4)
    | st.sampled_from(["1e-7", "0.00001", "x3e-4f", "\x7f"])
)
canonical_values = st.recursive(
    canonical_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(canonical_keys, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(canonical_values)
def test_canonical_is_the_standard_librarys(value):
    assert jsoncodec.canonical(value) == standard_canonical(value)


@pytest.mark.parametrize(
    "value",
    [1e-05, -2.0980569947355117e-06, 9.99e-05, 1e-09, 1e-10, 0.0001, 1e16, 2**64, {"x": "\x7f"}, ["é"], "\ud800"],
)
def test_canonical_where_orjson_writes_otherwise(codec, value):
    assert codec.canonical(value) == standard_canonical(value)


def test_canonical_uses_orjson_for_plain_ascii_data(monkeypatch):
    """The speed of retry-safe batches rests on this: an orjson that writes floats as the standard library
    does passes the check at import. One that does not (3.11 writes ``1e16`` for ``1e+16``) must fail it."""
    if jsoncodec.orjson is None:
        pytest.skip("orjson is not installed (the speedups extra)")
    if jsoncodec.orjson.dumps(1e16) != b"1e+16":
        assert not jsoncodec._orjson_agrees(), "orjson %s writes 1e16" % jsoncodec.orjson.__version__
        return
    assert jsoncodec._orjson_agrees()

    class NotCalled:
        def encode(self, value):
            raise AssertionError("the standard library wrote %r" % (value,))

    monkeypatch.setattr(jsoncodec, "_canonical", NotCalled())
    events = [{"eid": "INTERACT", "ets": 1668591949682, "did": "device-0", "pos": [12.5, -0.25], "n": None}] * 3
    assert jsoncodec.canonical(events) == standard_canonical(events)


def test_an_orjson_that_writes_otherwise_is_not_used(monkeypatch):
    """Were orjson to write a probe differently where ``canonical`` would trust it, ``canonical`` stays with
    the standard library: here, trusting it on every small float."""
    if jsoncodec.orjson is None:
        pytest.skip("orjson is not installed (the speedups extra)")
    monkeypatch.setattr(jsoncodec, "_same_as_standard", lambda written: written.isascii())
    assert not jsoncodec._orjson_agrees()
