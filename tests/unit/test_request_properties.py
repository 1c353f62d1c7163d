"""Property tests: the request rules against an independent oracle, the fast path against the schema,
the record builder and the JSON parser on arbitrary input."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.data_in import valid_by_the_rules
from tornado_ingest.errors import InvalidInput
from tornado_ingest.records import record_for_request
from tornado_ingest.request import REQUEST_SCHEMA, follows_the_rules, parse_json, validate_request
from tornado_ingest.settings import Dataset

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
field_values = st.sampled_from(["api.data.in", "v2", "", "m-1"]) | json_values
events = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
requests = st.fixed_dictionaries(
    {},
    optional={
        "id": field_values,
        "ver": field_values,
        "ts": field_values,
        "params": st.fixed_dictionaries({}, optional={"msgid": field_values}) | json_values,
        "data": events | st.lists(events | json_values, max_size=4) | json_values,
        "other": json_values,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_request_schema_matches_the_rules(document):
    try:
        validate_request(document)
        accepted = True
    except InvalidInput as exc:
        accepted = False
        assert exc.message
    assert accepted == valid_by_the_rules(document)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_the_fast_path_accepts_exactly_what_the_schema_accepts(document):
    try:
        REQUEST_SCHEMA(document)
        schema_accepts = True
    except Exception:
        schema_accepts = False
    assert follows_the_rules(document) == schema_accepts


@settings(max_examples=300, deadline=None)
@given(
    events | st.lists(events, min_size=1, max_size=5),
    st.text(min_size=1, max_size=20).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
)
def test_record_builder_round_trips(data, msgid):
    dataset = Dataset(id="ds", sink="s", entry_topic="t", key="event.k")
    try:
        record = record_for_request(dataset, data, msgid)
    except InvalidInput:
        assert _has_surrogate(data)
        return
    assert b"\n" not in record.value
    document = json.loads(record.value.decode("utf-8"))
    if isinstance(data, list):
        assert document["events"] == data and document["id"] == msgid
    else:
        assert document["event"] == data
    assert document["dataset"] == "ds" and document["msgid"] == msgid
    assert isinstance(document["obsrv_meta"]["syncts"], int)


def _has_surrogate(value) -> bool:
    text = json.dumps(value, ensure_ascii=False)
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_json_never_raises_anything_but_invalid_input(body):
    try:
        parse_json(body, max_depth=20)
    except InvalidInput:
        pass
