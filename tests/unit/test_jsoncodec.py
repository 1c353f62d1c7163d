"""Both JSON back ends give the same answers: orjson (speedups) and the standard library."""

from __future__ import annotations

import json

import pytest

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
