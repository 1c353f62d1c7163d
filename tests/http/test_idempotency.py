"""Retry-safe requests through the HTTP contract, with the in-process store (``idempotency: {}``)."""

from __future__ import annotations

import asyncio
import json

import pytest

from sinks.base import SinkUnavailable
from tests.support.data_in import envelope_of, ingest_request


@pytest.fixture
def config_document(config_document):
    config_document["sinks"]["slow"] = {"type": "memory", "delay": 0.5}
    datasets = config_document["datasets"]
    datasets["events"]["idempotency"] = {"window": "1h"}
    datasets["slow"] = {"sink": "slow", "entry_topic": "slow", "idempotency": {"wait": 2}}
    datasets["impatient"] = {"sink": "slow", "entry_topic": "impatient", "idempotency": {"wait": 0.1}}
    return config_document


def written(sink, msgid):
    return [record for record in sink.documents() if record["msgid"] == msgid]


@pytest.mark.gen_test
async def test_a_retry_gets_the_first_answer_again_and_writes_nothing(ingest, memory_sink):
    request = ingest_request(data={"eid": "A", "did": "d1", "n": 1}, msgid="retry-1")
    first = await ingest("events", request)
    assert first.code == 200 and "Idempotent-Replayed" not in first.headers
    retry = dict(request, ts="1711966399999")  # a client that rebuilds its request on retry: another ts
    retry["data"] = {"n": 1, "did": "d1", "eid": "A"}  # and its keys in another order: the same data
    again = await ingest("events", retry)
    assert again.code == 200 and again.headers["Idempotent-Replayed"] == "true"
    first_envelope, again_envelope = envelope_of(first), envelope_of(again)
    assert again_envelope["params"]["resmsgid"] == first_envelope["params"]["resmsgid"]
    assert again_envelope["params"]["msgid"] == "retry-1" and again_envelope["responseCode"] == "OK"
    assert len(written(memory_sink, "retry-1")) == 1


@pytest.mark.gen_test
async def test_the_same_msgid_with_other_data_is_409(ingest, memory_sink):
    assert (await ingest("events", ingest_request(data={"n": 1}, msgid="reused"))).code == 200
    response = await ingest("events", ingest_request(data={"n": 2}, msgid="reused"))
    assert response.code == 409, response.body
    envelope = envelope_of(response)
    assert envelope["responseCode"] == "CONFLICT"
    assert envelope["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert envelope["params"]["msgid"] == "reused" and envelope["params"]["status"] == "FAILED"
    assert len(written(memory_sink, "reused")) == 1


@pytest.mark.gen_test
async def test_a_failed_first_attempt_is_not_remembered(ingest, memory_sink):
    memory_sink.failure = SinkUnavailable("broker away")
    first = await ingest("events", ingest_request(msgid="failed-first"))
    assert first.code == 503
    memory_sink.failure = None
    retry = await ingest("events", ingest_request(msgid="failed-first"))
    assert retry.code == 200 and "Idempotent-Replayed" not in retry.headers
    assert len(written(memory_sink, "failed-first")) == 1


@pytest.mark.gen_test
async def test_the_msgid_is_a_key_per_dataset_and_only_where_asked(ingest, memory_sink):
    request = ingest_request(msgid="shared-id")
    assert (await ingest("events", request)).code == 200
    for _ in range(2):  # "custom" has no idempotency: every request is written, as before
        response = await ingest("custom", request)
        assert response.code == 200 and "Idempotent-Replayed" not in response.headers
    assert len(written(memory_sink, "shared-id")) == 3


@pytest.mark.gen_test(timeout=10)
async def test_a_request_arriving_while_the_first_is_in_flight_waits_for_its_answer(ingest, app):
    first, second, third = await asyncio.gather(
        *(ingest("slow", ingest_request(msgid="in-flight")) for _ in range(3)),
    )
    assert [r.code for r in (first, second, third)] == [200, 200, 200]
    assert len({envelope_of(r)["params"]["resmsgid"] for r in (first, second, third)}) == 1
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in (first, second, third)) == ["", "true", "true"]
    assert len(written(app.sinks["slow"], "in-flight")) == 1


@pytest.mark.gen_test(timeout=10)
async def test_a_wait_longer_than_idempotency_wait_is_503_in_flight(ingest, app):
    first, second = sorted(
        await asyncio.gather(*(ingest("impatient", ingest_request(msgid="still-busy")) for _ in range(2))),
        key=lambda response: response.code,
    )
    assert first.code == 200
    assert second.code == 503 and second.headers["Retry-After"] == "7"
    assert envelope_of(second)["error"]["code"] == "IDEMPOTENCY_KEY_IN_FLIGHT"
    third = await ingest("impatient", ingest_request(msgid="still-busy"))  # the retry gets the answer
    assert third.code == 200 and envelope_of(third)["params"]["resmsgid"] == envelope_of(first)["params"]["resmsgid"]
    assert len(written(app.sinks["slow"], "still-busy")) == 1


@pytest.mark.gen_test
async def test_health_shows_each_stores_keys_and_counts(ingest, health, http_client, base_url):
    await ingest("events", ingest_request(data={"n": 1}, msgid="h1"))
    await ingest("events", ingest_request(data={"n": 1}, msgid="h1"))
    await ingest("events", ingest_request(data={"n": 2}, msgid="h1"))
    public = json.loads((await http_client.fetch(base_url + "/health")).body)["result"]
    assert public["idempotency"]["events"] == {"store": "memory", "state": "up"}  # no counts for anyone
    result = await health()
    assert result["status"] == "ok"
    assert result["idempotency"]["events"] == {
        "store": "memory",
        "state": "up",
        "keys": 1,
        "max_keys": 100000,
        "evicted": 0,
        "replayed": 1,
        "conflicts": 1,
        "unchecked": 0,
        "refused": 0,
    }
    assert set(result["idempotency"]) == {"events", "slow", "impatient"}


@pytest.mark.gen_test
async def test_a_dry_run_neither_reserves_nor_is_remembered(ingest, memory_sink):
    request = ingest_request(data={"n": 1}, msgid="dry-1")
    dry = await ingest("events", request, headers={"Content-Type": "application/json", "X-Dry-Run": "true"})
    assert dry.code == 200 and "Idempotent-Replayed" not in dry.headers
    real = await ingest("events", request)
    assert real.code == 200 and "Idempotent-Replayed" not in real.headers  # the dry run did not count as the first
    assert len(written(memory_sink, "dry-1")) == 1


@pytest.fixture
def flaky_document(config_document):
    config_document["sinks"]["flaky"] = {"type": "tests.support.sinks:FlakySink", "fail_every": 2}
    config_document["datasets"]["halves"] = {
        "sink": "flaky",
        "entry_topic": "halves",
        "batch": "per_event",
        "idempotency": {},
    }
    return config_document


@pytest.mark.gen_test
async def test_a_207_is_not_remembered_its_retry_is_a_new_attempt(flaky_document, ingest, app):
    batch = ingest_request(data=[{"n": 0}, {"n": 1}], msgid="half")
    assert (await ingest("halves", batch)).code == 207
    retry = await ingest("halves", batch)
    assert "Idempotent-Replayed" not in retry.headers and retry.code in (200, 207)
    assert len(app.sinks["flaky"].records) > 1  # written again: a 207 is not a 200


@pytest.mark.gen_test
async def test_a_reload_keeps_what_the_store_remembers(ingest, memory_sink, app, config_document):
    from tornado_ingest.config import parse_config
    from tornado_ingest.reload import Reloader

    assert (await ingest("events", ingest_request(msgid="before-reload"))).code == 200
    store = app.context.idempotency.gates["events"].store
    document = json.loads(json.dumps(config_document))
    document["datasets"]["events"]["idempotency"] = {"window": "2h", "max_keys": 10}
    assert await Reloader(app.service, lambda: parse_config(document, source="reloaded")).reload()
    gate = app.context.idempotency.gates["events"]
    assert gate.store is store and gate.settings.window == 7200 and store.max_keys == 10
    again = await ingest("events", ingest_request(msgid="before-reload"))
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(written(memory_sink, "before-reload")) == 1
    del document["datasets"]["events"]["idempotency"]
    assert await Reloader(app.service, lambda: parse_config(document, source="reloaded")).reload()
    assert "events" not in app.context.idempotency.gates  # opted out: the next retry is written
    assert "Idempotent-Replayed" not in (await ingest("events", ingest_request(msgid="before-reload"))).headers


@pytest.mark.gen_test
async def test_replays_and_conflicts_are_counted_for_prometheus(ingest, http_client, management_url):
    from prometheus_client.parser import text_string_to_metric_families

    for data in ({"n": 1}, {"n": 1}, {"n": 1}, {"n": 2}):
        await ingest("events", ingest_request(data=data, msgid="counted"))
    text = (await http_client.fetch(management_url + "/metrics")).body.decode()
    counts = {
        sample.labels["result"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tornado_ingest_idempotency_total" and sample.labels["dataset"] == "events"
    }
    assert counts == {"replayed": 2.0, "conflicts": 1.0, "unchecked": 0.0, "refused": 0.0}
