"""The record builder and the message key."""

from __future__ import annotations

import json

import pytest

from tornado_ingest import jsoncodec
from tornado_ingest.errors import InvalidInput
from tornado_ingest.records import deliveries_for, encode_document, record_document, record_for_request, record_key
from tornado_ingest.settings import Dataset

DATASET = Dataset(id="ds", sink="s", entry_topic="t", key="event.did")


def test_single_event_record():
    assert record_document(DATASET, {"a": 1}, "m", syncts_ms=123) == {
        "event": {"a": 1},
        "obsrv_meta": {
            "syncts": 123,
            "flags": {},
            "timespans": {},
            "error": {},
            "source": {"connector": "api", "connectorInstance": "api"},
        },
        "dataset": "ds",
        "msgid": "m",
    }


def test_batch_record_uses_the_dataset_key_names():
    dataset = Dataset(id="ds", sink="s", extraction_key="items", dedup_key="bid")
    record = record_document(dataset, [{"a": 1}], "m", syncts_ms=1)
    assert list(record) == ["items", "bid", "obsrv_meta", "dataset", "msgid"]
    assert record["items"] == [{"a": 1}] and record["bid"] == "m"


def test_encoding_is_compact_utf8():
    assert encode_document({"a": "é", "b": [1]}) == '{"a":"é","b":[1]}'.encode()


def test_a_lone_surrogate_is_invalid_input():
    with pytest.raises(InvalidInput, match="lone surrogate"):
        encode_document({"x": "\ud800"})


def test_integers_past_64_bits_are_written_exactly():
    assert json.loads(encode_document({"n": 10**30, "m": -(10**25)})) == {"n": 10**30, "m": -(10**25)}


@pytest.mark.parametrize(
    "event, key",
    [
        ({"did": "abc"}, b"abc"),
        ({"did": 42}, b"42"),
        ({"did": True}, b"true"),
        ({"did": None}, None),
        ({"did": {"x": 1}}, None),
        ({}, None),
    ],
)
def test_record_key(event, key):
    assert record_key({"event": event}, ("event", "did")) == key


def test_record_for_request_carries_key_and_headers():
    record = record_for_request(DATASET, {"did": "d1"}, "m1")
    assert json.loads(record.value)["event"] == {"did": "d1"}
    assert record.key == b"d1"
    assert record.headers == [("dataset", b"ds"), ("msgid", b"m1")]
    assert record_for_request(DATASET, [{"did": "d1"}], "m2").key is None


@pytest.mark.parametrize("data", [{"did": "d1", "n": 18446744073709551616}, [{"did": "d1"}, {"x": [1.5, "é"]}]])
def test_a_record_carries_the_data_the_parse_wrote_as_it_is(data):
    written = b"<the parse's bytes>"  # not JSON: only the bytes themselves can have put it there
    record = record_for_request(DATASET, data, "m1", data_json=written)
    assert written in record.value
    real = json.dumps(data, separators=(",", ":")).encode()
    spliced = json.loads(record_for_request(DATASET, data, "m1", data_json=real).value)
    plain = json.loads(record_for_request(DATASET, data, "m1").value)
    del spliced["obsrv_meta"]["syncts"], plain["obsrv_meta"]["syncts"]
    assert spliced == plain and record.key == (b"d1" if isinstance(data, dict) else None)


def test_records_that_carry_part_of_the_data_write_it_themselves():
    data = [{"a": 1}, {"b": 2}, {"c": 3}]
    written = b"<the parse's bytes>"
    kept = deliveries_for(DATASET, data, "m", (), {1: []}, data_json=written)
    assert [delivery.events for delivery in kept] == [(0, 2)]
    assert json.loads(kept[0].record.value)["events"] == [{"a": 1}, {"c": 3}]
    per_event = Dataset(id="ds", sink="s", entry_topic="t", batch="per_event")
    records = [delivery.record.value for delivery in deliveries_for(per_event, data, "m", (), {}, written)]
    assert len(records) == 3 and not any(written in value for value in records)
    assert written in deliveries_for(DATASET, data, "m", (), {}, data_json=written)[0].record.value


def test_without_orjson_fragments_the_record_is_written_the_long_way(monkeypatch):
    monkeypatch.setattr(jsoncodec, "_Fragment", None)
    record = record_for_request(DATASET, [{"a": 1}], "m", data_json=b"<the parse's bytes>")
    assert json.loads(record.value)["events"] == [{"a": 1}]
