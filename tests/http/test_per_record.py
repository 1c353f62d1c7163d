"""Per-record truth: event schemas, dead letters, one record per event, 207, receipts, dry runs (memory sinks)."""

from __future__ import annotations

import json

import pytest

from sinks.base import SinkUnavailable
from tests.support.data_in import envelope_of, ingest_request
from tornado_ingest.config import ConfigError, parse_config

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["eid"],
    "properties": {"eid": {"type": "string"}, "ets": {"type": "integer"}},
}
GOOD = {"eid": "INTERACT", "ets": 1, "did": "d-1"}


@pytest.fixture
def config_document(config_document):
    config_document["sinks"].update(
        dead={"type": "memory"},
        flaky={"type": "tests.support.sinks:FlakySink", "fail_every": 2},
    )
    config_document["datasets"].update(
        checked={"sink": "mem", "entry_topic": "checked", "schema": SCHEMA},
        lettered={
            "sink": "mem",
            "entry_topic": "lettered",
            "schema": SCHEMA,
            "on_invalid": "dead_letter",
            "dead_letter": {"sink": "dead", "entry_topic": "dead.letters"},
        },
        each={"sink": "mem", "entry_topic": "each", "batch": "per_event", "key": "event.did"},
        flaky={"sink": "flaky", "entry_topic": "flaky", "batch": "per_event"},
        receipted={"sink": "mem", "entry_topic": "receipted", "receipts": True},
    )
    return config_document


def failure(response, status, code):
    envelope = envelope_of(response)
    assert response.code == status and envelope["error"]["code"] == code, response.body
    return envelope["error"]["message"]


@pytest.mark.gen_test
async def test_a_batch_with_bad_events_is_refused_naming_each(ingest, memory_sink):
    batch = [GOOD, {"ets": 2}, GOOD, {"eid": "X", "ets": "late"}]
    message = failure(await ingest("checked", ingest_request(batch)), 400, "DATA_INGESTION_INVALID_INPUT")
    assert message == 'data[1].eid: "eid" is a required property; data[3].ets: "late" is not of type "integer"'
    assert not memory_sink.records


@pytest.mark.gen_test
async def test_one_bad_event_and_many(ingest, memory_sink):
    assert failure(await ingest("checked", ingest_request({"ets": 1})), 400, "DATA_INGESTION_INVALID_INPUT") == (
        'data.eid: "eid" is a required property'
    )
    message = failure(await ingest("checked", ingest_request([{}] * 30)), 400, "DATA_INGESTION_INVALID_INPUT")
    assert message.count("is a required property") == 20 and message.endswith("(and 10 more)")
    assert (await ingest("checked", ingest_request([GOOD, GOOD]))).code == 200


@pytest.mark.gen_test
async def test_bad_events_go_to_the_dead_letters_with_their_errors(ingest, app, memory_sink):
    response = await ingest("lettered", ingest_request([GOOD, {"ets": "x"}, GOOD], msgid="dl-1"))
    assert response.code == 200, response.body
    result = envelope_of(response)["result"]
    assert result == {
        "message": "Data ingested successfully",
        "dead_lettered": [
            {"index": 1, "errors": ['eid: "eid" is a required property', 'ets: "x" is not of type "integer"']}
        ],
    }
    [(destination, record)] = memory_sink.records
    assert destination == "lettered" and json.loads(record.value)["events"] == [GOOD, GOOD]
    [(destination, letter)] = app.sinks["dead"].records
    document = json.loads(letter.value)
    assert destination == "dead.letters"
    assert (document["event"], document["index"], document["msgid"]) == ({"ets": "x"}, 1, "dl-1")
    assert document["errors"] == result["dead_lettered"][0]["errors"] and "obsrv_meta" in document


@pytest.mark.gen_test
async def test_per_event_is_one_record_per_event_with_its_key(ingest, memory_sink):
    events = [dict(GOOD, did="d-%d" % i) for i in range(3)]
    assert (await ingest("each", ingest_request(events, msgid="pe-1"))).code == 200
    records = [record for _, record in memory_sink.records]
    assert [json.loads(record.value)["event"] for record in records] == events
    assert [record.key for record in records] == [b"d-0", b"d-1", b"d-2"]
    assert all(json.loads(record.value)["msgid"] == "pe-1" for record in records)


@pytest.mark.gen_test
async def test_a_half_failed_per_event_batch_is_207_with_the_truth_for_each_event(ingest, app):
    events = [dict(GOOD, n=i) for i in range(4)]
    response = await ingest("flaky", ingest_request(events))  # every second record is refused
    assert response.code == 207, response.body
    envelope = envelope_of(response)
    assert envelope["params"]["status"] == "PARTIAL" and envelope["responseCode"] == "MULTI_STATUS"
    outcomes = envelope["result"]["events"]
    assert [(o["index"], o["status"], o["code"]) for o in outcomes] == [
        (0, 200, "OK"),
        (1, 503, "SINK_UNAVAILABLE"),
        (2, 200, "OK"),
        (3, 503, "SINK_UNAVAILABLE"),
    ]
    assert envelope["result"]["message"].startswith("2 of 4 events taken")
    assert response.headers["Retry-After"] == "7"
    stored = [json.loads(record.value)["event"]["n"] for _, record in app.sinks["flaky"].records]
    assert sorted(stored) == [o["index"] for o in outcomes if o["status"] == 200]


@pytest.mark.gen_test
async def test_when_no_record_is_taken_for_one_reason_the_answer_is_that_reason(ingest, memory_sink):
    memory_sink.failure = SinkUnavailable("down")
    failure(await ingest("each", ingest_request([GOOD, GOOD])), 503, "SINK_UNAVAILABLE")


@pytest.mark.gen_test
async def test_a_dead_letter_that_cannot_be_written_makes_a_207(ingest, app, memory_sink):
    app.sinks["dead"].failure = SinkUnavailable("down")
    response = await ingest("lettered", ingest_request([GOOD, {}]))
    assert response.code == 207
    outcomes = envelope_of(response)["result"]["events"]
    assert [(o["index"], o["status"]) for o in outcomes] == [(0, 200), (1, 503)]
    assert outcomes[1]["errors"] == ['eid: "eid" is a required property']


@pytest.mark.parametrize("how", [{"query": "?dry_run=true"}, {"header": "true"}])
@pytest.mark.gen_test
async def test_a_dry_run_checks_everything_and_writes_nothing(post, app, memory_sink, how):
    def dry(path):
        return path + how.get("query", "")

    headers = {"Content-Type": "application/json"}
    if "header" in how:
        headers["X-Dry-Run"] = how["header"]
    response = await post(dry("/v2/data/in/lettered"), ingest_request([GOOD, {}]), headers=headers)
    assert response.code == 200
    result = envelope_of(response)["result"]
    assert result["message"].startswith("Dry run") and result["dead_lettered"][0]["index"] == 1
    assert failure(
        await post(dry("/v2/data/in/checked"), ingest_request({}), headers=headers), 400, "DATA_INGESTION_INVALID_INPUT"
    )
    assert failure(await post(dry("/v2/data/in/no-topic"), ingest_request(), headers=headers), 404, "TOPIC_NOT_FOUND")
    assert failure(await post(dry("/v2/data/in/nope"), ingest_request(), headers=headers), 404, "DATASET_NOT_FOUND")
    assert not memory_sink.records and not app.sinks["dead"].records


@pytest.mark.gen_test
async def test_a_dry_run_flag_must_say_yes_or_no(post):
    failure(await post("/v2/data/in/events?dry_run=maybe", ingest_request()), 400, "DATA_INGESTION_INVALID_INPUT")


@pytest.mark.gen_test
async def test_receipts_only_when_asked(ingest):
    plain = await ingest("events", ingest_request())
    assert envelope_of(plain)["result"] == {"message": "Data ingested successfully"}
    assert "Preference-Applied" not in plain.headers
    asked = await ingest(
        "events", ingest_request(), headers={"Content-Type": "application/json", "Prefer": "return=receipts"}
    )
    assert asked.headers["Preference-Applied"] == "return=receipts"
    assert envelope_of(asked)["result"]["receipts"] == [{"events": [0], "sink": "mem", "destination": "events.raw"}]
    configured = await ingest("receipted", ingest_request([GOOD, GOOD]))
    assert envelope_of(configured)["result"]["receipts"] == [
        {"events": [0, 1], "sink": "mem", "destination": "receipted"}
    ]


@pytest.mark.parametrize(
    "dataset, expected",
    [
        ({"schema": {"type": "nonsense"}}, "datasets.d.schema: not a valid JSON Schema"),
        ({"on_invalid": "dead_letter"}, "datasets.d.on_invalid: dead_letter needs a schema"),
        ({"schema": SCHEMA, "on_invalid": "dead_letter"}, "datasets.d.dead_letter: is required with on_invalid"),
        (
            {"schema": SCHEMA, "on_invalid": "dead_letter", "dead_letter": {"sink": "mme", "entry_topic": "x"}},
            "datasets.d.dead_letter.sink: no sink named 'mme' (did you mean 'mem'?)",
        ),
        ({"dead_letter": {"sink": "mem", "entry_topic": "x"}}, "datasets.d.dead_letter: is used only with"),
        ({"batch": "each"}, "datasets.d.batch: expected one_record or per_event"),
        ({"schema": "missing.json"}, "datasets.d.schema: cannot read the schema file"),
    ],
)
def test_config_errors(dataset, expected):
    document = {
        "sinks": {"mem": {"type": "memory"}},
        "datasets": {"d": dict({"sink": "mem", "entry_topic": "t"}, **dataset)},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert str(caught.value).startswith(expected), str(caught.value)


def test_a_schema_file_beside_the_config(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "events.yaml").write_text("type: object\nrequired: [eid]\n")
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        "sinks: {mem: {type: memory}}\ndatasets: {d: {sink: mem, entry_topic: t, schema: schemas/events.yaml}}\n"
    )
    from tornado_ingest.config import load_config

    schema = load_config(str(config_file)).datasets["d"].event_schema
    assert schema is not None and schema.problems([{}, {"eid": 1}]) == {0: [(["eid"], '"eid" is a required property')]}


@pytest.mark.gen_test
async def test_both_dry_run_switches_are_checked(post):
    headers = {"Content-Type": "application/json", "X-Dry-Run": "{}"}  # found by schemathesis
    response = await post("/v2/data/in/events?dry_run=true", ingest_request(), headers=headers)
    assert failure(response, 400, "DATA_INGESTION_INVALID_INPUT").startswith("X-Dry-Run: expected true or false")


class TestFileReceipts:
    @pytest.fixture
    def config_document(self, config_document):
        config_document["datasets"]["example"].update(receipts=True, batch="per_event")
        return config_document

    @pytest.mark.gen_test
    async def test_a_file_receipt_is_the_line_s_path_and_byte_offset(self, ingest, tmp_path):
        await ingest("example", ingest_request([GOOD]))  # something before: offsets do not start at 0
        response = await ingest("example", ingest_request([dict(GOOD, n=i) for i in range(3)], msgid="r-1"))
        receipts = envelope_of(response)["result"]["receipts"]
        path = tmp_path / "data" / "example.jsonl"
        content = path.read_bytes()
        assert [receipt["path"] for receipt in receipts] == [str(path)] * 3
        for index, receipt in enumerate(receipts):
            line = content[receipt["offset"] :].split(b"\n", 1)[0]
            assert json.loads(line)["event"]["n"] == index and receipt["events"] == [index]


@pytest.fixture
def narrow_document(config_document):
    config_document["sinks"]["narrow"] = {"type": "memory", "delay": 0.3, "max_inflight": 2}
    config_document["datasets"]["narrow"] = {"sink": "narrow", "entry_topic": "narrow", "batch": "per_event"}
    return config_document


@pytest.mark.gen_test
async def test_a_per_event_batch_is_admitted_whole_never_refused_in_part(narrow_document, ingest, app):
    import asyncio

    first = asyncio.ensure_future(ingest("narrow", ingest_request([GOOD] * 5, msgid="wide")))  # 5 > max_inflight 2
    await asyncio.sleep(0.1)
    second = await ingest("narrow", ingest_request([GOOD] * 2, msgid="behind"))  # the sink is full: all refused
    assert second.code == 429 and envelope_of(second)["error"]["code"] == "TOO_MANY_REQUESTS"
    assert (await first).code == 200
    assert [json.loads(record.value)["msgid"] for _, record in app.sinks["narrow"].records] == ["wide"] * 5
