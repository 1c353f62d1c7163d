"""The RabbitMQ sink with a spool, against the real broker through a proxy the tests cut and freeze.

Every request answered 200 or 202 is in the queue; a record appears twice only
if its first attempt's fate could not be known (a connection lost before its
confirm: counted as ``in_doubt``); nothing else is there.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.support import rabbitmq
from tests.support.data_in import envelope_of, ingest_request
from tests.support.load import EVENT
from tests.support.spool import assert_each_client_in_order, drained, duplicates, outage_under_load
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture(scope="module")
def broker():
    return rabbitmq.reachable_admin()


@pytest.fixture
def queue(broker):
    name = "ti-spooled-" + uuid.uuid4().hex[:10]
    yield name
    broker.delete(queues=[name])


@pytest.fixture
def proxy():
    with TcpProxy(rabbitmq.broker_address()) as running:
        yield running


@pytest.fixture
def config_document(tmp_path, queue, proxy):
    return {
        "server": {"port": 0, "retry_after": 7},
        "sinks": {
            "rabbit": {
                "type": "rabbitmq",
                "url": rabbitmq.with_address(rabbitmq.RABBITMQ_URL, proxy.host, proxy.port),
                "declare": {"queues": [{"name": queue}]},
                "confirm_timeout": 1,
                "connect_timeout": 1,
                "reconnect_delay": 0.05,
                "reconnect_max_delay": 0.5,
                "spool": {"directory": str(tmp_path / "spool")},
            }
        },
        "datasets": {"orders": {"sink": "rabbit", "entry_topic": queue}},
    }


async def off_loop(function, *args):
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def received(broker, queue):
    messages = await off_loop(broker.drain, queue)
    msgids = []
    for _, properties, body in messages:
        headers = rabbitmq.headers_of(properties)
        assert headers["dataset"] == "orders" and properties.delivery_mode == 2
        assert ('"msgid":"%s"' % headers["msgid"]).encode() in body
        msgids.append(headers["msgid"])
    return msgids


async def wait_until_up(app, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not app.sinks["rabbit"].is_up:
        assert time.monotonic() < deadline, app.sinks["rabbit"].health()
        await asyncio.sleep(0.05)


@pytest.mark.gen_test(timeout=90)
async def test_an_outage_mid_load_loses_nothing(app, ingest, http_client, management_url, proxy, broker, queue):
    await wait_until_up(app)
    answers = await outage_under_load(ingest, http_client, management_url, "orders", "rabbit", proxy.cut, proxy.restore)
    report = await drained(http_client, management_url, "rabbit")

    summary = answers.statuses()
    print("answers:", summary, "spool:", report)
    assert set(summary) <= {200, 202}, summary
    assert summary.get(202, 0) > 20 and summary.get(200, 0) > 20
    msgids = await received(broker, queue)
    answered = answers.with_status(200, 202)
    assert set(msgids) == set(answered)
    twice = duplicates(msgids)
    assert sum(count - 1 for count in twice.values()) <= report["in_doubt"], twice
    assert_each_client_in_order(msgids)


@pytest.mark.gen_test(timeout=60)
async def test_a_late_confirm_is_a_202_delivered_once(app, ingest, http_client, management_url, proxy, broker, queue):
    await wait_until_up(app)
    proxy.freeze()  # nothing flows, nothing is closed: confirms come late (confirm_timeout 1 s)
    started = time.monotonic()
    first = await ingest("orders", ingest_request(data=EVENT, msgid="late-0"))
    assert first.code == 202 and 0.9 < time.monotonic() - started < 3
    assert envelope_of(first)["responseCode"] == "ACCEPTED"
    rest = await asyncio.gather(*(ingest("orders", ingest_request(msgid="late-%d" % n)) for n in range(1, 10)))
    assert [response.code for response in rest] == [202] * 9
    proxy.thaw()  # before the heartbeat gives the connection up: the confirm of late-0 arrives
    report = await drained(http_client, management_url, "rabbit")
    msgids = await received(broker, queue)
    assert sorted(msgids) == sorted("late-%d" % n for n in range(10)), msgids
    assert report["in_doubt"] == 0 and report["replayed"] == 9


@pytest.mark.gen_test(timeout=60)
async def test_records_spooled_before_the_service_could_ever_connect_are_delivered(
    app, ingest, http_client, management_url, proxy, broker, queue
):
    proxy.cut()
    await asyncio.sleep(0.5)
    codes = [(await ingest("orders", ingest_request(msgid="early-%d" % n))).code for n in range(30)]
    assert codes == [202] * 30
    proxy.restore()
    await drained(http_client, management_url, "rabbit")
    assert await received(broker, queue) == ["early-%d" % n for n in range(30)]
