"""Per-record truth against real brokers: what each answer says of each event is what the broker holds.

RabbitMQ is the real one on 127.0.0.1:5672 (through a ``TcpProxy`` where the
test cuts it); Kafka is librdkafka's mock cluster. A 207's events answered 200
must be in the broker, with the receipt's partition and offset; those answered
otherwise may only be there when the broker's word was lost with a cut
connection (in doubt, said in the README), never in a case the broker refused.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import pytest

from tests.support.data_in import envelope_of, ingest_request
from tests.support.kafka_cluster import unique_topic
from tests.support.rabbitmq import RABBITMQ_URL, broker_address, headers_of, reachable_admin, with_address
from tests.support.tcp_proxy import TcpProxy

SCHEMA = {"type": "object", "required": ["eid"], "properties": {"eid": {"type": "string"}}}
RECEIPTS = {"Content-Type": "application/json", "Prefer": "return=receipts"}


@pytest.fixture(scope="module")
def admin():
    return reachable_admin()


@pytest.fixture
def queues(admin):
    suffix = uuid.uuid4().hex[:10]
    made = {name: "ti-%s-%s" % (name, suffix) for name in ("each", "full", "checked", "cut")}
    yield made
    admin.delete(queues=list(made.values()))


@pytest.fixture
def proxy():
    with TcpProxy(broker_address()) as running:
        yield running


@pytest.fixture
def kafka_topics(kafka_site):
    return {
        "each": kafka_site.create_topic(unique_topic("each"), partitions=3),
        "dead": kafka_site.create_topic(unique_topic("dead")),
        "big": kafka_site.create_topic(unique_topic("big")),
    }


def rabbit(url, queues, **more):
    return dict({"type": "rabbitmq", "url": url, "declare": {"queues": queues}, "confirm_timeout": 5}, **more)


@pytest.fixture(autouse=True)
def each_driver(kafka_driver):
    """Every test here runs with each driver of the Kafka sinks (the RabbitMQ ones twice: the file is quick)."""


@pytest.fixture
def config_document(queues, proxy, kafka_site, kafka_topics, kafka_driver):
    kafka = {"type": "kafka", "driver": kafka_driver, "bootstrap_servers": kafka_site.bootstrap, "send_timeout": 5}
    return {
        "server": {"port": 0, "retry_after": 7},
        "sinks": {
            "rabbit": rabbit(
                RABBITMQ_URL,
                [
                    {"name": queues["each"]},
                    {"name": queues["checked"]},
                    {"name": queues["full"], "arguments": {"x-max-length": 3, "x-overflow": "reject-publish"}},
                ],
            ),
            "proxied": rabbit(
                with_address(RABBITMQ_URL, proxy.host, proxy.port),
                [{"name": queues["cut"]}],
                connect_timeout=1,
                reconnect_delay=0.05,
            ),
            "bus": dict(kafka, producer=dict(kafka_site.producer_options)),
            "small": dict(kafka, producer=dict(kafka_site.producer_options, max_request_size=1000)),
        },
        "datasets": {
            "r_each": {"sink": "rabbit", "entry_topic": queues["each"], "batch": "per_event"},
            "r_full": {"sink": "rabbit", "entry_topic": queues["full"], "batch": "per_event"},
            "r_cut": {"sink": "proxied", "entry_topic": queues["cut"], "batch": "per_event"},
            "r_checked": {
                "sink": "rabbit",
                "entry_topic": queues["checked"],
                "schema": SCHEMA,
                "on_invalid": "dead_letter",
                "dead_letter": {"sink": "bus", "entry_topic": kafka_topics["dead"]},
            },
            "k_each": {"sink": "bus", "entry_topic": kafka_topics["each"], "batch": "per_event", "key": "event.did"},
            "k_big": {"sink": "small", "entry_topic": kafka_topics["big"], "batch": "per_event"},
        },
    }


async def off_loop(function, *args):
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


def events_in(messages_of_queue):
    """(msgid, event) of each message drained from a queue, in queue order."""
    found = []
    for _, properties, body in messages_of_queue:
        record = json.loads(body)
        found.append((headers_of(properties)["msgid"], record["event"]))
    return found


def outcomes(response):
    return [(event["index"], event["status"]) for event in envelope_of(response)["result"]["events"]]


@pytest.mark.gen_test(timeout=30)
async def test_kafka_receipts_are_the_partitions_and_offsets_a_consumer_reads(ingest, kafka_site, kafka_topics):
    batch = [{"eid": "E", "did": "device-%d" % n, "n": n} for n in range(6)]
    response = await ingest("k_each", ingest_request(batch, msgid="receipted"), headers=RECEIPTS)
    assert response.code == 200, response.body
    receipts = envelope_of(response)["result"]["receipts"]
    assert [r["events"] for r in receipts] == [[n] for n in range(6)]  # one message per event
    messages = await off_loop(kafka_site.consume, kafka_topics["each"], 6)
    read = {(m.partition, m.offset): (json.loads(m.value)["event"]["n"], m.key) for m in messages}
    for receipt in receipts:
        assert receipt["topic"] == kafka_topics["each"] and receipt["sink"] == "bus"
        n = receipt["events"][0]
        assert read[(receipt["partition"], receipt["offset"])] == (n, b"device-%d" % n)


@pytest.mark.gen_test(timeout=30)
async def test_rabbitmq_receipts_say_exchange_routing_key_and_confirmed(ingest, admin, queues):
    response = await ingest("r_each", ingest_request([{"n": 0}, {"n": 1}, {"n": 2}], msgid="r-1"), headers=RECEIPTS)
    assert response.code == 200, response.body
    receipts = envelope_of(response)["result"]["receipts"]
    assert receipts == [
        {"events": [n], "sink": "rabbit", "exchange": "", "routing_key": queues["each"], "confirmed": True}
        for n in range(3)
    ]
    assert events_in(await off_loop(admin.drain, queues["each"])) == [("r-1", {"n": n}) for n in range(3)]


@pytest.mark.gen_test(timeout=30)
async def test_a_queue_that_refuses_part_of_a_batch_gives_207_and_holds_exactly_the_200s(ingest, admin, queues):
    response = await ingest("r_full", ingest_request([{"n": n} for n in range(6)], msgid="full"))
    assert response.code == 207, response.body
    taken = [index for index, status in outcomes(response) if status == 200]
    refused = [index for index, status in outcomes(response) if status != 200]
    assert len(taken) == 3 and len(refused) == 3  # x-max-length 3, reject-publish: the broker nacks the rest
    assert response.headers["Retry-After"] == "7"
    stored = events_in(await off_loop(admin.drain, queues["full"]))
    assert sorted(event["n"] for _, event in stored) == taken


@pytest.mark.gen_test(timeout=60)
async def test_a_connection_cut_mid_batch_gives_207_and_every_200_is_in_the_queue(ingest, admin, queues, proxy):
    """The link fails part-way through the batch: the broker gets (and confirms) the first part only, then the
    connection is cut. The answer must say 200 for exactly records the queue holds."""
    count = 3000
    cut = threading.Event()

    def cut_once_the_first_part_is_stored():
        stored, steady_since = -1, time.monotonic()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = admin.message_count(queues["cut"])
            if now != stored:
                stored, steady_since = now, time.monotonic()
            elif stored > 0 and time.monotonic() - steady_since > 0.5:  # all it got is stored; confirms are back
                proxy.cut()
                cut.set()
                return
            time.sleep(0.02)

    assert (await ingest("r_cut", ingest_request({"n": -1}, msgid="warm-up"))).code == 200
    await off_loop(admin.drain, queues["cut"])
    proxy.hold_toward_target_after(200_000)  # about a fifth of the batch reaches the broker
    cutter = threading.Thread(target=cut_once_the_first_part_is_stored, daemon=True)
    cutter.start()
    response = await ingest("r_cut", ingest_request([{"n": n} for n in range(count)], msgid="cut"))
    cutter.join(25)
    assert cut.is_set(), "the first part of the batch never settled in the queue"
    assert response.code == 207, response.body[:500]
    statuses = dict(outcomes(response))
    answered_200 = {index for index, status in statuses.items() if status == 200}
    assert {status for status in statuses.values()} == {200, 503}
    stored = [event["n"] for _, event in events_in(await off_loop(admin.drain, queues["cut"]))]
    assert answered_200 <= set(stored), "a 200 that the queue does not hold"
    assert set(stored) <= set(range(count)) and len(stored) == len(set(stored))
    print("rabbitmq, link failed mid-batch of %d: %d answered 200, %d stored" % (count, len(answered_200), len(stored)))


@pytest.mark.gen_test(timeout=30)
async def test_kafka_refusing_oversized_events_gives_207_and_holds_exactly_the_200s(ingest, kafka_site, kafka_topics):
    batch = [{"n": 0}, {"n": 1, "blob": "x" * 2000}, {"n": 2}, {"n": 3, "blob": "y" * 2000}]
    response = await ingest("k_big", ingest_request(batch, msgid="big"), headers=RECEIPTS)
    assert response.code == 207, response.body
    events = envelope_of(response)["result"]["events"]
    assert [(e["index"], e["status"], e["code"]) for e in events] == [
        (0, 200, "OK"),
        (1, 413, "PAYLOAD_TOO_LARGE"),
        (2, 200, "OK"),
        (3, 413, "PAYLOAD_TOO_LARGE"),
    ]
    messages = await off_loop(kafka_site.consume, kafka_topics["big"], 4, 3)
    assert sorted(json.loads(m.value)["event"]["n"] for m in messages) == [0, 2]
    assert {(e["receipt"]["partition"], e["receipt"]["offset"]) for e in events if e["status"] == 200} == {
        (m.partition, m.offset) for m in messages
    }


@pytest.mark.gen_test(timeout=30)
async def test_dead_letters_go_to_another_broker_with_their_errors(ingest, admin, queues, kafka_site, kafka_topics):
    batch = [{"eid": "A", "n": 0}, {"n": 1}, {"eid": "C", "n": 2}, {"eid": 4, "n": 3}]
    response = await ingest("r_checked", ingest_request(batch, msgid="lettered"))
    assert response.code == 200, response.body
    dead = envelope_of(response)["result"]["dead_lettered"]
    assert [entry["index"] for entry in dead] == [1, 3]
    [(msgid, record)] = [
        (headers_of(properties)["msgid"], json.loads(body))
        for _, properties, body in await off_loop(admin.drain, queues["checked"])
    ]
    assert msgid == "lettered" and [event["n"] for event in record["events"]] == [0, 2]
    letters = [json.loads(m.value) for m in await off_loop(kafka_site.consume, kafka_topics["dead"], 2)]
    assert sorted(letter["event"]["n"] for letter in letters) == [1, 3]
    for letter in letters:
        assert letter["dataset"] == "r_checked" and letter["msgid"] == "lettered" and letter["errors"]
    assert {letter["event"]["n"]: letter["errors"] for letter in letters} == {
        entry["index"]: entry["errors"] for entry in dead
    }


@pytest.mark.gen_test(timeout=30)
async def test_a_dry_run_writes_nothing_to_either_broker(ingest, admin, queues, kafka_site, kafka_topics):
    headers = {"Content-Type": "application/json", "X-Dry-Run": "true"}
    for dataset in ("r_each", "k_each", "r_checked"):
        response = await ingest(dataset, ingest_request([{"eid": "A"}, {"n": 1}], msgid="dry"), headers=headers)
        assert response.code == 200 and "nothing was written" in envelope_of(response)["result"]["message"]
    assert await off_loop(admin.drain, queues["each"]) == []
    assert await off_loop(admin.drain, queues["checked"]) == []
    assert await off_loop(kafka_site.consume, kafka_topics["each"], 1, 2) == []
    assert await off_loop(kafka_site.consume, kafka_topics["dead"], 1, 2) == []
