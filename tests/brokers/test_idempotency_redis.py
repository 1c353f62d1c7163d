"""Retry-safe requests shared through a real Redis: atomic reservations, answers replayed across replicas,
a dead replica's reservation expiring, and Redis going away (never a 500).

Redis is reached through a ``TcpProxy`` so that a test can cut it or freeze it.
Every msgid is unique to the run: keys stay in Redis for their window.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.support.data_in import envelope_of, ingest_request
from tests.support.redis_server import reachable_redis, redis_address, through
from tests.support.tcp_proxy import TcpProxy
from tornado_ingest.idempotency import KEY_PREFIX, Idempotency, store_key
from tornado_ingest.metrics import Metrics

IN_FLIGHT_TTL = 1.0
STORE_TIMEOUT = 1.0  # a wrong answer (waiting on a store known down) takes this long; a right one, far less


@pytest.fixture(scope="module")
def redis_client():
    client = reachable_redis()
    yield client
    client.close()


@pytest.fixture
def redis_proxy(redis_client):
    with TcpProxy(redis_address()) as proxy:
        yield proxy


@pytest.fixture
def config_document(config_document, redis_proxy):
    shared = {
        "store": "redis",
        "url": through(redis_proxy),
        "timeout": STORE_TIMEOUT,
        "in_flight_ttl": IN_FLIGHT_TTL,
        "wait": 3,
    }
    datasets = config_document["datasets"]
    datasets["events"]["idempotency"] = dict(shared, window="10m")
    datasets["strict"] = {"sink": "mem", "entry_topic": "strict", "idempotency": dict(shared, when_store_down="refuse")}
    return config_document


@pytest.fixture
def msgid():
    return "redis-" + uuid.uuid4().hex


def written(sink, msgid):
    return [record for record in sink.documents() if record["msgid"] == msgid]


@pytest.mark.gen_test
async def test_the_answer_is_kept_in_redis_without_the_data(ingest, memory_sink, redis_client, msgid):
    request = ingest_request(data={"secret-ish": "payload"}, msgid=msgid)
    first = await ingest("events", request)
    assert first.code == 200
    again = await ingest("events", request)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert envelope_of(again)["params"]["resmsgid"] == envelope_of(first)["params"]["resmsgid"]
    other = await ingest("events", ingest_request(data={"other": 1}, msgid=msgid))
    assert other.code == 409 and envelope_of(other)["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(written(memory_sink, msgid)) == 1

    key = store_key("events", msgid)
    assert key.startswith(KEY_PREFIX + "events:") and msgid not in key
    value = redis_client.get(key)
    assert value.startswith("D|") and value.endswith("|" + envelope_of(first)["params"]["resmsgid"])
    assert "payload" not in value
    assert 590_000 < redis_client.pttl(key) <= 600_000  # window: 10m


def two_replicas(app):
    """What two replicas of this app hold: their own Redis clients, the same Redis."""
    return Idempotency.build(app.context.config, Metrics()), Idempotency.build(app.context.config, Metrics())


@pytest.mark.gen_test(timeout=15)
async def test_two_replicas_never_both_write_one_msgid(app, msgid):
    dataset = app.context.config.datasets["events"]
    replicas = two_replicas(app)
    writes = []

    async def request(replica, delay):
        async with replica.attempt(dataset, msgid, {"n": 1}) as attempt:
            if attempt.first_resmsgid is not None:
                return attempt.first_resmsgid
            await asyncio.sleep(delay)  # the sink taking its time
            writes.append(replica)
            attempt.answered("resmsgid-of-the-first")
            return "resmsgid-of-the-first"

    try:
        answers = await asyncio.gather(*(request(replicas[n % 2], 0.3) for n in range(6)))
    finally:
        for replica in replicas:
            await replica.close()
    assert answers == ["resmsgid-of-the-first"] * 6
    assert len(writes) == 1


@pytest.mark.gen_test(timeout=15)
async def test_a_replica_dying_in_flight_holds_its_msgid_only_until_in_flight_ttl(app, msgid):
    dataset = app.context.config.datasets["events"]
    dying, surviving = two_replicas(app)
    try:
        await dying.attempt(dataset, msgid, {"n": 1}).__aenter__()  # reserved, then never settled: the replica died
        started = time.monotonic()
        async with surviving.attempt(dataset, msgid, {"n": 1}) as attempt:
            waited = time.monotonic() - started
            assert attempt.first_resmsgid is None  # the retry is a new attempt once the reservation expired
            attempt.answered("the-retry")
    finally:
        await dying.close()
        await surviving.close()
    assert IN_FLIGHT_TTL - 0.1 <= waited < IN_FLIGHT_TTL + 1.0, waited


@pytest.mark.gen_test(timeout=20)
async def test_redis_away_is_the_configured_choice_never_a_500(ingest, memory_sink, redis_proxy, health, msgid):
    assert (await ingest("events", ingest_request(msgid=msgid))).code == 200
    redis_proxy.cut()
    started = time.monotonic()
    accepted = await ingest("events", ingest_request(msgid=msgid))  # when_store_down: accept (the default)
    assert accepted.code == 200 and "Idempotent-Replayed" not in accepted.headers
    assert time.monotonic() - started < 1.0
    assert len(written(memory_sink, msgid)) == 2  # the price of accepting: this retry was written again
    refused = await ingest("strict", ingest_request(msgid=msgid))  # when_store_down: refuse
    assert refused.code == 503 and refused.headers["Retry-After"] == "7"
    assert envelope_of(refused)["error"]["code"] == "IDEMPOTENCY_STORE_UNAVAILABLE"
    result = await health()
    assert result["status"] == "degraded"
    report = result["idempotency"]["events"]
    assert report["state"] == "down" and report["unchecked"] == 1 and report["store"] == "redis"
    assert "Redis at redis://127.0.0.1:%d" % redis_proxy.port in report["error"]
    assert result["idempotency"]["strict"]["refused"] == 1

    redis_proxy.restore()
    await asyncio.sleep(1.1)  # DOWN_FOR: a store found down is asked again a second later
    again = await ingest("events", ingest_request(msgid=msgid))
    assert again.code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert (await health())["idempotency"]["events"]["state"] == "up"


@pytest.mark.gen_test(timeout=20)
async def test_a_redis_that_stops_answering_costs_a_request_at_most_the_timeout(ingest, redis_proxy, msgid):
    assert (await ingest("events", ingest_request(msgid=msgid + "-warm"))).code == 200
    redis_proxy.freeze()
    try:
        started = time.monotonic()
        response = await ingest("events", ingest_request(msgid=msgid))
        elapsed = time.monotonic() - started
        assert response.code == 200, response.body
        assert elapsed < STORE_TIMEOUT + 0.5, "timeout %.1f s: took %.2f s" % (STORE_TIMEOUT, elapsed)
        started = time.monotonic()
        assert (await ingest("events", ingest_request(msgid=msgid + "-next"))).code == 200
        assert time.monotonic() - started < STORE_TIMEOUT / 2, "a store known down is not waited on again"
    finally:
        redis_proxy.thaw()


@pytest.mark.gen_test(timeout=20)
async def test_many_requests_at_once_wait_for_a_connection_rather_than_skip_the_check(app, msgid):
    from tornado_ingest.idempotency.redis_store import MAX_CONNECTIONS

    dataset = app.context.config.datasets["events"]
    replica = Idempotency.build(app.context.config, Metrics())

    async def request(number):
        async with replica.attempt(dataset, "%s-%d" % (msgid, number), {"n": number}) as attempt:
            await asyncio.sleep(0.01)
            attempt.answered("r-%d" % number)

    try:
        await asyncio.gather(*(request(number) for number in range(MAX_CONNECTIONS * 5)))
        assert replica.report(detailed=True)["events"]["unchecked"] == 0
    finally:
        await replica.close()
