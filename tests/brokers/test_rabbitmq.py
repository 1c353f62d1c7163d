"""The RabbitMQ sink against a real broker: what a 200 promises, and what happens when the broker goes away.

The service under test has four sinks: ``rabbit`` (default exchange), ``topical``
(a declared topic exchange), ``proxied`` (through a TCP proxy the tests cut
and freeze) and ``local`` (a file sink). Every queue and exchange is unique to
the test and deleted afterwards. Without a broker these tests skip, except
with CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid

import pytest
from tornado.httpclient import AsyncHTTPClient

from sinks.base import DestinationNotFound, Record, SinkUnavailable
from sinks.rabbitmq import RabbitMQSink
from sinks.redact import redact
from tests.support.data_in import JSON_HEADERS, TRACED, TRACEPARENT, body_of, envelope_of, ingest_request
from tests.support.rabbitmq import (
    RABBITMQ_URL,
    broker_address,
    headers_of,
    reachable_admin,
    with_address,
    with_password,
)
from tests.support.tcp_proxy import TcpProxy

RETRY_AFTER = "7"


@pytest.fixture(scope="module")
def broker():
    return reachable_admin()


@pytest.fixture
def names(broker):
    suffix = uuid.uuid4().hex[:10]
    made = {
        "queue": "ti-orders-" + suffix,
        "topic_exchange": "ti-ingest-" + suffix,
        "topic_queue": "ti-topical-" + suffix,
        "proxied_queue": "ti-proxied-" + suffix,
        "full_queue": "ti-full-" + suffix,
    }
    yield made
    broker.delete(
        queues=[made["queue"], made["topic_queue"], made["proxied_queue"], made["full_queue"]],
        exchanges=[made["topic_exchange"]],
    )


@pytest.fixture
def proxy(request):
    """Service -> proxy -> broker; ``indirect`` param "cut" starts it cut."""
    with TcpProxy(broker_address()) as running:
        if getattr(request, "param", "up") == "cut":
            running.cut()
        yield running


@pytest.fixture
def config_document(tmp_path, names, proxy):
    return {
        "server": {"port": 0, "retry_after": int(RETRY_AFTER)},
        "sinks": {
            "rabbit": {
                "type": "rabbitmq",
                "url": RABBITMQ_URL,
                "confirm_timeout": 5,
                "declare": {
                    "queues": [
                        {"name": names["queue"]},
                        {"name": names["full_queue"], "arguments": {"x-max-length": 1, "x-overflow": "reject-publish"}},
                    ]
                },
            },
            "topical": {
                "type": "rabbitmq",
                "url": RABBITMQ_URL,
                "exchange": names["topic_exchange"],
                "declare": {
                    "exchanges": [{"name": names["topic_exchange"], "type": "topic"}],
                    "queues": [
                        {
                            "name": names["topic_queue"],
                            "bind": {"exchange": names["topic_exchange"], "routing_key": "orders.#"},
                        }
                    ],
                },
            },
            "proxied": {
                "type": "rabbitmq",
                "url": with_address(RABBITMQ_URL, proxy.host, proxy.port),
                "declare": {"queues": [{"name": names["proxied_queue"]}]},
                "confirm_timeout": 1,
                "connect_timeout": 1,
                "reconnect_delay": 0.05,
                "reconnect_max_delay": 0.3,
            },
            "beating": {
                "type": "rabbitmq",
                "url": with_address(RABBITMQ_URL, proxy.host, proxy.port),
                "heartbeat": 2,
                "connect_timeout": 1,
                "reconnect_delay": 0.05,
                "reconnect_max_delay": 0.3,
            },
            "local": {"type": "file", "directory": str(tmp_path / "data")},
        },
        "datasets": {
            "orders": {"sink": "rabbit", "entry_topic": names["queue"]},
            "full": {"sink": "rabbit", "entry_topic": names["full_queue"]},
            "nowhere": {"sink": "rabbit", "entry_topic": names["queue"] + "-nobody-listens"},
            "topical": {"sink": "topical", "entry_topic": "orders.created"},
            "proxied": {"sink": "proxied", "entry_topic": names["proxied_queue"]},
            "example": {"sink": "local", "entry_topic": "example"},
        },
    }


async def off_loop(function, *args):
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def health_of(health):
    return (await health())["sinks"]


async def wait_until_up(app, sink_name, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not app.sinks[sink_name].is_up:
        assert time.monotonic() < deadline, app.sinks[sink_name].health()
        await asyncio.sleep(0.02)


def assert_unavailable(response):
    assert response.code == 503, response.body
    assert response.headers["Retry-After"] == RETRY_AFTER
    envelope = envelope_of(response)
    assert envelope["responseCode"] == "SERVICE_UNAVAILABLE"
    assert envelope["error"]["code"] == "SINK_UNAVAILABLE"


# -- what a 200 means -------------------------------------------------------------


@pytest.mark.gen_test
async def test_single_event_is_a_persistent_json_message(ingest, broker, names, tmp_path):
    request = ingest_request(msgid="single-1")
    response = await ingest("orders", request, headers=TRACED)
    assert response.code == 200, response.body
    assert envelope_of(response)["params"]["status"] == "SUCCESS"
    assert (await ingest("example", request)).code == 200  # the same record, to the file sink

    messages = await off_loop(broker.drain, names["queue"])
    assert len(messages) == 1
    method, properties, body = messages[0]
    assert method.routing_key == names["queue"] and method.exchange == ""
    assert properties.delivery_mode == 2
    assert properties.content_type == "application/json"
    assert headers_of(properties) == {
        "dataset": "orders",
        "msgid": "single-1",
        "request_id": "req-42",
        "traceparent": TRACEPARENT,
        "tracestate": "rojo=00f067aa0ba902b7",
    }
    record = json.loads(body)
    assert record["event"] == request["data"]
    assert record["dataset"] == "orders" and record["msgid"] == "single-1"
    assert record["obsrv_meta"]["source"] == {"connector": "api", "connectorInstance": "api"}
    assert isinstance(record["obsrv_meta"]["syncts"], int)
    file_record = json.loads((tmp_path / "data" / "example.jsonl").read_text())
    assert set(file_record) == set(record)


@pytest.mark.gen_test
async def test_batch_is_one_message(ingest, broker, names):
    events = [{"eid": "A", "n": i} for i in range(3)]
    response = await ingest("orders", ingest_request(data=events, msgid="batch-1"))
    assert response.code == 200, response.body
    ((_, properties, body),) = await off_loop(broker.drain, names["queue"])
    record = json.loads(body)
    assert record["events"] == events and record["id"] == "batch-1" and record["msgid"] == "batch-1"
    request_id = response.headers["X-Request-ID"]  # generated: the client sent none
    assert headers_of(properties) == {"dataset": "orders", "msgid": "batch-1", "request_id": request_id}


@pytest.mark.gen_test(timeout=20)
async def test_concurrent_sends_are_each_confirmed(app, broker, names):
    sink = app.sinks["rabbit"]
    records = [Record(b'{"n":%d}' % i, "orders", "m-%d" % i) for i in range(500)]
    await asyncio.gather(*(sink.send(names["queue"], record) for record in records))
    assert sink.health().details["unconfirmed"] == 0
    bodies = [body for _, _, body in await off_loop(broker.drain, names["queue"])]
    assert sorted(bodies) == sorted(record.value for record in records)


@pytest.mark.gen_test
async def test_a_message_no_queue_takes_is_404_topic_not_found(ingest, app, broker, names):
    response = await ingest("nowhere", ingest_request(msgid="lost-1"))
    assert response.code == 404, response.body
    envelope = envelope_of(response)
    assert envelope["error"]["code"] == "TOPIC_NOT_FOUND"
    assert names["queue"] + "-nobody-listens" in envelope["error"]["message"]
    # returns are matched to their own message: the routable ones around it still succeed
    sink = app.sinks["rabbit"]
    outcomes = await asyncio.gather(
        sink.send(names["queue"], Record(b"{}", "orders", "a")),
        sink.send(names["queue"] + "-nobody-listens", Record(b"{}", "orders", "b")),
        sink.send(names["queue"], Record(b"{}", "orders", "c")),
        return_exceptions=True,
    )
    assert outcomes[0].where["confirmed"] and outcomes[2].where == {
        "exchange": "",
        "routing_key": names["queue"],
        "confirmed": True,
    }
    assert isinstance(outcomes[1], DestinationNotFound)
    assert len(await off_loop(broker.drain, names["queue"])) == 2
    assert (await ingest("orders", ingest_request())).code == 200  # the channel is still fine


@pytest.mark.gen_test
async def test_a_nack_is_503(ingest, broker, names):
    assert (await ingest("full", ingest_request(msgid="fits"))).code == 200
    assert_unavailable(await ingest("full", ingest_request(msgid="overflows")))  # x-overflow: reject-publish
    assert [headers_of(p)["msgid"] for _, p, _ in await off_loop(broker.drain, names["full_queue"])] == ["fits"]


@pytest.mark.gen_test(timeout=15)
async def test_topology_is_declared_durable_at_start(ingest, broker, names):
    exchange, queue = names["topic_exchange"], names["topic_queue"]
    for kind, name in (("exchange", exchange), ("queue", queue), ("queue", names["queue"])):
        assert await off_loop(broker.exists, kind, name), name
    assert not await off_loop(broker.exists, "queue", "ti-never-declared-" + uuid.uuid4().hex)
    # the broker refuses a redeclaration with other properties: 406 for non-durable, none for durable
    redeclare = broker.redeclare
    assert await off_loop(lambda: redeclare("exchange", exchange, exchange_type="topic", durable=True)) is None
    assert await off_loop(lambda: redeclare("exchange", exchange, exchange_type="topic", durable=False)) == 406
    assert await off_loop(lambda: redeclare("queue", queue, durable=True)) is None
    assert await off_loop(lambda: redeclare("queue", queue, durable=False)) == 406
    # the binding routes orders.# from the exchange to the queue
    assert (await ingest("topical", ingest_request(msgid="bound"))).code == 200
    ((method, properties, _),) = await off_loop(broker.drain, queue)
    assert (method.exchange, method.routing_key) == (exchange, "orders.created")
    assert headers_of(properties)["msgid"] == "bound"


# -- when the broker goes away ----------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_connection_cut_during_load(app, proxy, broker, names, http_server, base_url):
    client = AsyncHTTPClient(force_instance=True, max_clients=32)
    total, cut_after = 300, 80
    results = {}
    done = asyncio.Event()

    async def one(i):
        response = await client.fetch(
            base_url + "/v2/data/in/proxied",
            method="POST",
            headers=JSON_HEADERS,
            body=body_of(ingest_request(msgid="load-%d" % i)),
            raise_error=False,
        )
        results[i] = response
        if len(results) == cut_after:
            done.set()

    async def cut_and_restore():
        await done.wait()
        proxy.cut()
        await asyncio.sleep(0.4)
        proxy.restore()

    async def worker(queue):
        while queue:
            await one(queue.pop(0))

    pending = list(range(total))
    try:
        await asyncio.gather(cut_and_restore(), *(worker(pending) for _ in range(32)))
    finally:
        client.close()

    ok = {"load-%d" % i for i, r in results.items() if r.code == 200}
    failed = [r for r in results.values() if r.code != 200]
    assert len(results) == total
    assert failed, "the cut did not fail any request: the test proved nothing"
    for response in failed:
        assert_unavailable(response)
    # recovery, without a restart
    await wait_until_up(app, "proxied")
    assert (await client_post(base_url, "proxied", "after-cut")).code == 200
    received = {headers_of(p)["msgid"] for _, p, _ in await off_loop(broker.drain, names["proxied_queue"])}
    assert ok | {"after-cut"} <= received, sorted(ok - received)[:10]
    assert app.sinks["proxied"].connects >= 2


async def client_post(base_url, dataset, msgid):
    client = AsyncHTTPClient()
    return await client.fetch(
        base_url + "/v2/data/in/" + dataset,
        method="POST",
        headers=JSON_HEADERS,
        body=body_of(ingest_request(msgid=msgid)),
        raise_error=False,
    )


@pytest.mark.gen_test(timeout=30)
async def test_a_frozen_broker_is_noticed_within_about_two_heartbeats(app, proxy, http_client, base_url, health):
    await wait_until_up(app, "beating")
    proxy.freeze()  # the broker stops answering, heartbeats included; nothing is closed
    started = time.monotonic()
    while app.sinks["beating"].is_up:
        assert time.monotonic() - started < 15, "a silent broker was not noticed"
        await asyncio.sleep(0.05)
    noticed = time.monotonic() - started
    assert noticed <= 2 * 2 + 1.5, "heartbeat 2 s: noticed after %.1f s" % noticed
    report = (await health_of(health))["beating"]
    assert report["state"] == "down" and "nothing from the broker" in report["error"], report
    proxy.thaw()
    await wait_until_up(app, "beating")


@pytest.mark.gen_test(timeout=15)
async def test_no_confirm_within_confirm_timeout_is_503(ingest, app, proxy, broker, names):
    proxy.freeze()  # the broker stops answering; nothing is closed
    started = time.monotonic()
    assert_unavailable(await ingest("proxied", ingest_request(msgid="unconfirmed")))
    assert 0.9 <= time.monotonic() - started < 4  # confirm_timeout: 1
    proxy.thaw()
    await wait_until_up(app, "proxied")
    assert (await ingest("proxied", ingest_request(msgid="confirmed"))).code == 200
    received = [headers_of(p)["msgid"] for _, p, _ in await off_loop(broker.drain, names["proxied_queue"])]
    assert "confirmed" in received  # "unconfirmed" may be there too: a retry makes a duplicate, never a loss


@pytest.mark.parametrize("proxy", ["cut"], indirect=True)
@pytest.mark.gen_test(timeout=15)
async def test_service_starts_while_the_broker_is_unreachable(
    ingest, app, proxy, broker, names, http_client, base_url, health
):
    report = (await health_of(health))["proxied"]
    assert report["state"] == "down"
    assert "cannot connect" in report["error"] and "refused" in report["error"].lower()
    assert (await health_of(health))["rabbit"]["state"] == "up"
    assert_unavailable(await ingest("proxied", ingest_request(msgid="too-early")))

    proxy.restore()
    await wait_until_up(app, "proxied")
    assert (await health_of(health))["proxied"]["state"] == "up"
    assert (await ingest("proxied", ingest_request(msgid="healed"))).code == 200
    received = [headers_of(p)["msgid"] for _, p, _ in await off_loop(broker.drain, names["proxied_queue"])]
    assert received == ["healed"]


@pytest.mark.gen_test
async def test_health_shows_no_password(http_client, base_url, management_url):
    public = (await http_client.fetch(base_url + "/health")).body.decode()
    assert "guest" not in public and "url" not in public  # no user name, no URL where ingest is served
    body = (await http_client.fetch(management_url + "/health")).body.decode()
    password = redact(RABBITMQ_URL) != RABBITMQ_URL
    if password:
        assert ":***@" in body
        assert RABBITMQ_URL not in body


@pytest.mark.gen_test(timeout=15)
async def test_a_wrong_password_is_reported_but_never_shown(broker, caplog):
    secret = "pw-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    sink = RabbitMQSink.from_options("wrong", {"url": with_password(RABBITMQ_URL, secret), "reconnect_delay": 0.05})
    await sink.start()
    try:
        report = sink.health()
        assert not report.up
        assert "authentication refused" in report.error
        with pytest.raises(SinkUnavailable, match="authentication refused"):
            await sink.send("q", Record(b"{}", "d", "m"))
        await asyncio.sleep(0.3)  # a few retries, each logged
    finally:
        await sink.close()
    assert ":***@" in report.details["url"]
    assert secret not in json.dumps(dataclasses.asdict(report))
    assert caplog.records and secret not in caplog.text


@pytest.mark.gen_test(timeout=15)
async def test_close_waits_for_outstanding_confirms(broker, names):
    sink = RabbitMQSink.from_options(
        "closing", {"url": RABBITMQ_URL, "declare": {"queues": [{"name": names["queue"]}]}}
    )
    await sink.start()
    assert sink.is_up
    sends = [asyncio.ensure_future(sink.send(names["queue"], Record(b'{"n":%d}' % i, "d", "m"))) for i in range(200)]
    await asyncio.sleep(0)  # every send has published; none confirmed yet
    await sink.close()
    assert all(send.done() and send.exception() is None for send in sends)
    assert len(await off_loop(broker.drain, names["queue"])) == 200
    with pytest.raises(SinkUnavailable, match="closing"):
        await sink.send(names["queue"], Record(b"{}", "d", "m"))
