"""The Kafka sink with a spool, against librdkafka's mock cluster behind a proxy the tests cut and freeze.

What a 2xx promises: every request answered 200 or 202 is in Kafka, exactly once
(no crash here; see tests/process/test_spool_crash.py for kill -9), in the order
each client sent it, with its headers; nothing else is.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time

import pytest

from sinks.base import Record
from sinks.spool import frames
from tests.support.data_in import envelope_of, ingest_request
from tests.support.kafka_cluster import cuttable_or_skip, unique_topic
from tests.support.load import EVENT
from tests.support.spool import (
    assert_each_client_in_order,
    drained as drained_in,
    duplicates,
    fetch,
    outage_under_load,
    spool_report as report_of,
)

SEND_TIMEOUT = 2.0


@pytest.fixture(autouse=True)
def each_driver(kafka_driver):
    """Every test here runs with each driver of the Kafka sink."""


@pytest.fixture
def cuttable():
    site = cuttable_or_skip()
    yield site
    site.close()


@pytest.fixture
def topic(cuttable):
    return cuttable.create_topic(unique_topic("spooled"))


def sink_options(cuttable, spool_directory, driver, **spool):
    return {
        "driver": driver,
        "bootstrap_servers": cuttable.bootstrap,
        "producer": dict(cuttable.producer_options),
        "send_timeout": SEND_TIMEOUT,
        "spool": dict({"directory": str(spool_directory)}, **spool),
    }


@pytest.fixture
def spool_options():
    return {}


@pytest.fixture
def config_document(tmp_path, cuttable, topic, spool_options, kafka_driver):
    return {
        "server": {"port": 0, "retry_after": 7},
        "sinks": {
            "bus": dict(type="kafka", **sink_options(cuttable, tmp_path / "spool", kafka_driver, **spool_options))
        },
        "datasets": {"telemetry": {"sink": "bus", "entry_topic": topic, "key": "event.did"}},
    }


async def off_loop(function, *args):
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def spool_report(http_client, management_url):
    return await report_of(http_client, management_url, "bus")


async def drained(http_client, management_url):
    return await drained_in(http_client, management_url, "bus")


async def stored(cuttable, topic, at_least):
    """Every message of the topic (waits until ``at_least`` are there, then a little more for stragglers)."""
    messages = await off_loop(cuttable.consume, topic, at_least, 20)
    more = await off_loop(cuttable.consume, topic, len(messages) + 1000, 2)
    return more if len(more) >= len(messages) else messages


def msgids_of(messages):
    found = []
    for message in messages:
        headers = dict(message.headers)
        record = json.loads(message.value)
        # replayed or not, every header kept: the request id too
        assert headers.keys() == {"dataset", "msgid", "request_id"} and headers["request_id"]
        assert (headers["dataset"], headers["msgid"]) == (b"telemetry", record["msgid"].encode())
        assert message.key == b"device-1"
        found.append(record["msgid"])
    return found


@pytest.mark.gen_test(timeout=90)
async def test_an_outage_mid_load_loses_nothing_and_the_spool_sends_no_copy_of_what_kafka_has(
    ingest, http_client, management_url, cuttable, topic
):
    answers = await outage_under_load(
        ingest, http_client, management_url, "telemetry", "bus", cuttable.cut, cuttable.restore, away=4
    )
    report = await drained(http_client, management_url)

    summary = answers.statuses()
    print("answers:", summary, "spool:", report)
    assert set(summary) <= {200, 202}, summary
    assert summary.get(202, 0) > 20 and summary.get(200, 0) > 20
    answered = answers.with_status(200, 202)
    msgids = msgids_of(await stored(cuttable, topic, len(answered)))
    # The spool sent no copy of a record whose first attempt the producer delivered itself (its retry after
    # the cut): those are spooled - replayed. The mock cluster does not deduplicate such a retry as Kafka's
    # idempotent producer would when the cut took the answer to a request it had stored: a duplicate can only
    # be one of them (or one in doubt), never a copy the spool sent of a record Kafka had.
    delivered_by_producer = report["spooled"] - report["replayed"] - report["set_aside"]
    twice = {msgid: answers.status[msgid] for msgid in duplicates(msgids)}  # their answers: 200 or 202
    assert len(twice) <= delivered_by_producer + report["in_doubt"], (twice, report)
    assert set(twice.values()) <= {202}, twice  # a 200 is never stored twice
    assert set(msgids) == set(answered)
    assert_each_client_in_order(msgids)
    assert report["replayed"] > 0 and report["spooled"] == summary[202]


@pytest.mark.gen_test(timeout=60)
async def test_a_broker_that_stops_answering_gets_202_after_send_timeout_and_no_duplicate(
    ingest, http_client, management_url, cuttable, topic
):
    assert (await ingest("telemetry", ingest_request(data=EVENT, msgid="before"))).code == 200
    cuttable.proxy.freeze()
    started = time.monotonic()
    first = await ingest("telemetry", ingest_request(data=EVENT, msgid="late-0"))
    waited = time.monotonic() - started
    assert first.code == 202, first.body
    envelope = envelope_of(first)
    assert envelope["responseCode"] == "ACCEPTED" and envelope["params"]["status"] == "SUCCESS"
    assert "spooled" in envelope["result"]["message"]
    assert SEND_TIMEOUT - 0.5 < waited < SEND_TIMEOUT + 1.5
    others = await asyncio.gather(
        *(ingest("telemetry", ingest_request(data=EVENT, msgid="late-%d" % n)) for n in range(1, 20))
    )
    assert [response.code for response in others] == [202] * 19  # behind late-0: spooled at once
    cuttable.proxy.thaw()
    report = await drained(http_client, management_url)
    msgids = msgids_of(await stored(cuttable, topic, 21))
    assert sorted(msgids) == sorted(["before"] + ["late-%d" % n for n in range(20)])  # the producer's own retry
    assert msgids.index("late-0") < msgids.index("late-1")  # counted once: the replayer waited for its word
    assert report["in_doubt"] == 0


class TestAFullSpool:
    @pytest.fixture
    def spool_options(self):
        return {"max_bytes": "1MiB"}

    @pytest.mark.gen_test(timeout=60)
    async def test_answers_503_and_recovers(self, ingest, http_client, management_url, cuttable, topic, caplog):
        cuttable.cut()
        pad = "x" * 20_000
        codes = {}
        for n in range(80):
            response = await ingest("telemetry", ingest_request(data=dict(EVENT, pad=pad), msgid="big-%d" % n))
            codes["big-%d" % n] = response.code
            if response.code == 503:
                assert envelope_of(response)["error"]["code"] == "SINK_UNAVAILABLE"
                assert "spool is full" in envelope_of(response)["error"]["message"]
                assert response.headers["Retry-After"] == "7"
        accepted = [msgid for msgid, code in codes.items() if code == 202]
        assert 30 < len(accepted) < 55 and set(codes.values()) == {202, 503}
        report = await spool_report(http_client, management_url)
        assert report["state"] == "full" and report["bytes"] <= 1 << 20
        code, ready = await fetch(http_client, management_url, "/ready")
        assert code == 503, "the broker is away and the spool takes nothing: not ready"
        full = [r for r in caplog.records if r.name.startswith("sinks.spool") and "is full" in r.getMessage()]
        assert len(full) == 1  # one line when it fills, not one per record refused

        cuttable.restore()
        await drained(http_client, management_url)
        assert (await ingest("telemetry", ingest_request(data=EVENT, msgid="after"))).code == 200
        msgids = msgids_of(await stored(cuttable, topic, len(accepted) + 1))
        assert sorted(msgids) == sorted(accepted + ["after"])


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.gen_test(timeout=60)
async def test_a_damaged_segment_is_repaired_at_start_up_and_the_rest_delivered(
    io_loop, tmp_path, cuttable, topic, damage, seed, caplog, kafka_driver
):
    from sinks.kafka import KafkaSink

    options = sink_options(cuttable, tmp_path / "spool", kafka_driver)
    cuttable.cut()
    first = KafkaSink.from_options("bus", options)
    await first.start()
    records = [Record(b'{"n":%d,"pad":"%s"}' % (n, b"y" * 300), "telemetry", "r-%d" % n) for n in range(20)]
    for record in records:
        assert (await first.send(topic, record)).spooled
    await first.close()

    [segment] = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(tmp_path / "spool")
        for name in names
        if name.endswith(".seg")
    ]
    with open(segment, "rb") as handle:
        data = handle.read()
    starts = [item.start for item in frames.scan(lambda offset, count: data[offset : offset + count], 0, len(data))]
    assert len(starts) == 20
    at = random.Random(seed).randrange(starts[1], len(data))  # not within the first record: something is left
    hit = max(n for n, start in enumerate(starts) if start <= at)
    if damage == "truncated":
        os.truncate(segment, at)
        expected = ["r-%d" % n for n in range(hit)]
    else:
        with open(segment, "r+b") as handle:
            handle.seek(at)
            byte = handle.read(1)[0]
            handle.seek(at)
            handle.write(bytes([byte ^ 0xFF]))
        expected = ["r-%d" % n for n in range(20) if n != hit]
    print("%s at byte %d of %d: record %d" % (damage, at, len(data), hit))

    cuttable.restore()
    second = KafkaSink.from_options("bus", options)
    await second.start()
    try:
        report = second.health().details["spool"]
        if damage == "truncated":
            assert report["torn_bytes_cut"] == at - starts[hit] and report["damaged"] == 0
        else:
            assert report["damaged"] == 1 and report["torn_bytes_cut"] == 0
        assert report["records"] == len(expected)
        deadline = time.monotonic() + 20
        while second.health().details["spool"]["records"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        await second.close()
    messages = await stored(cuttable, topic, len(expected))
    assert [m.headers and dict(m.headers)["msgid"].decode() for m in messages] == expected
    assert "moved aside" in caplog.text
