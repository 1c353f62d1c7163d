"""RabbitMQ with a list of nodes: fail over when the node in use goes away, and come back to the first later.

Two ``TcpProxy`` in front of the local broker stand for two nodes of a cluster
(``url: [node A, node B]``): cutting a proxy is losing that node. Every 200
must be found in the broker's queue; the return to the first node must not
fail a single request.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from sinks.redact import redact
from tests.support.load import post_for
from tests.support.rabbitmq import (
    RABBITMQ_URL,
    broker_address,
    headers_of,
    reachable_admin,
    with_address,
)
from tests.support.tcp_proxy import TcpProxy

FAILBACK_AFTER = 1.0
CLIENTS = 16


@pytest.fixture(scope="module")
def broker():
    return reachable_admin()


@pytest.fixture
def queue(broker):
    name = "ti-failover-" + uuid.uuid4().hex[:10]
    yield name
    broker.delete(queues=[name])


@pytest.fixture
def nodes(request):
    """Node A and node B; ``indirect`` param "a-down" starts with node A cut."""
    with TcpProxy(broker_address()) as a, TcpProxy(broker_address()) as b:
        if getattr(request, "param", "") == "a-down":
            a.cut()
        yield a, b


def node_url(proxy):
    return with_address(RABBITMQ_URL, proxy.host, proxy.port)


def shown(proxy):
    """The node's URL as ``/health`` shows it (password masked)."""
    return redact(node_url(proxy))


@pytest.fixture
def config_document(nodes, queue):
    return {
        "server": {"port": 0},
        "sinks": {
            "cluster": {
                "type": "rabbitmq",
                "url": [node_url(proxy) for proxy in nodes],
                "declare": {"queues": [{"name": queue}]},
                "confirm_timeout": 2,
                "connect_timeout": 1,
                "reconnect_delay": 0.05,
                "reconnect_max_delay": 0.3,
                "failback_after": FAILBACK_AFTER,
            }
        },
        "datasets": {"orders": {"sink": "cluster", "entry_topic": queue}},
    }


async def node_in_use(app, timeout=10.0, wanted=None):
    """The URL of the node the sink is connected to (``wanted``: wait until it is that one)."""
    sink = app.sinks["cluster"]
    deadline = time.monotonic() + timeout
    while not sink.is_up or (wanted is not None and sink.health().details["url"] != wanted):
        assert time.monotonic() < deadline, sink.health()
        await asyncio.sleep(0.02)
    return sink.health().details["url"]


async def stored_msgids(broker, queue):
    messages = await asyncio.get_running_loop().run_in_executor(None, broker.drain, queue)
    return [headers_of(properties)["msgid"] for _, properties, _ in messages]


@pytest.mark.gen_test(timeout=60)
async def test_a_node_lost_under_load_fails_over_then_the_sink_returns_to_the_first(
    app, http_server, base_url, nodes, broker, queue, record_property
):
    node_a, node_b = nodes
    assert await node_in_use(app) == shown(node_a)
    events = {}

    async def lose_node_a_then_bring_it_back():
        await asyncio.sleep(1.0)
        node_a.cut()
        events["cut"] = time.monotonic()
        await node_in_use(app, wanted=shown(node_b))
        events["on b"] = time.monotonic()
        await asyncio.sleep(0.3)
        node_a.restore()
        await node_in_use(app, wanted=shown(node_a))
        events["back on a"] = time.monotonic()

    started = time.monotonic()
    figures, _ = await asyncio.gather(post_for(base_url, "orders", 5, CLIENTS, "f"), lose_node_a_then_bring_it_back())
    stored = await stored_msgids(broker, queue)
    cut, on_b, back = (events[name] - started for name in ("cut", "on b", "back on a"))
    summary = "rabbitmq, node A cut: %s; on node B %.2fs after the cut, back on node A %.2fs after that" % (
        figures.summary(stored),
        on_b - cut,
        back - on_b,
    )
    print("\n" + summary)
    record_property("figures", summary)
    assert set(figures.acknowledged) <= set(stored), sorted(set(figures.acknowledged) - set(stored))[:10]
    assert all(cut - 0.2 <= outcome.at <= on_b + 0.2 for outcome in figures.failed), figures.failed[:5]
    assert all(outcome.status == 503 for outcome in figures.failed)
    assert on_b - cut < 1.0, "failing over took %.2fs" % (on_b - cut)
    assert back - on_b >= FAILBACK_AFTER
    answered_after_return = [o for o in figures.outcomes if o.at > back]
    assert len(answered_after_return) > 50 and all(o.status == 200 for o in answered_after_return)
    assert app.sinks["cluster"].connects == 3  # A, B, A again


@pytest.mark.parametrize("nodes", ["a-down"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_a_first_node_that_refuses_at_start_is_skipped(
    app, ingest_ok, nodes, broker, queue, http_client, base_url
):
    node_a, node_b = nodes
    assert await node_in_use(app) == shown(node_b)
    report = await ingest_ok("started-on-b")
    assert report["sinks"]["cluster"]["url"] == shown(node_b)
    assert report["sinks"]["cluster"]["nodes"] == [shown(node_a), shown(node_b)]
    assert await stored_msgids(broker, queue) == ["started-on-b"]


@pytest.fixture
def ingest_ok(ingest, health):
    """``await ingest_ok(msgid)``: one request that must be a 200; then what ``/health`` says (in detail)."""

    async def send(msgid):
        from tests.support.data_in import ingest_request

        response = await ingest("orders", ingest_request(msgid=msgid))
        assert response.code == 200, response.body
        return await health()

    return send
