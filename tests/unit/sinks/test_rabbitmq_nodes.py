"""The order in which the RabbitMQ sink tries its nodes, and when it goes back to the first (no broker needed)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sinks.rabbitmq import nodes as nodes_module
from sinks.rabbitmq.nodes import Node, NodeList, takes_connections


def node_list(count, failback_after=300.0):
    return NodeList([Node(None, "amqp://node-%d" % n, ("127.0.0.1", 1)) for n in range(count)], failback_after)


def test_failed_attempts_walk_the_list_and_a_round_ends_where_it_began():
    nodes = node_list(3)
    assert [nodes.attempt_failed() for _ in range(3)] == [False, False, True]  # 1, 2, then back to 0: back off
    assert nodes.current is nodes.first
    nodes.connected(nodes.nodes[0])
    nodes.lost()  # node-0 went away: node-1 next, and a fresh round begins there
    assert nodes.current.redacted_url == "amqp://node-1"
    assert [nodes.attempt_failed() for _ in range(3)] == [False, False, True]
    assert nodes.current.redacted_url == "amqp://node-1"


def test_one_node_backs_off_after_each_failure():
    nodes = node_list(1)
    assert nodes.attempt_failed() and nodes.attempt_failed()
    nodes.connected(nodes.first)
    nodes.lost()
    assert nodes.on_first


@pytest.mark.gen_test
async def test_no_failback_while_on_the_first_node_or_when_turned_off():
    for nodes, index in ((node_list(2), 0), (node_list(2, failback_after=0), 1)):
        nodes.connected(nodes.nodes[index])
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(nodes.failback_due(0.1), 0.3)


@pytest.mark.gen_test
async def test_failback_waits_its_time_then_for_the_first_node_to_take_connections(monkeypatch):
    monkeypatch.setattr(nodes_module, "FAILBACK_PROBE_INTERVAL", 0.05)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    nodes = NodeList([Node(None, "a", ("127.0.0.1", port)), Node(None, "b", ("127.0.0.1", 1))], 0.1)
    nodes.connected(nodes.nodes[1])
    due = asyncio.ensure_future(nodes.failback_due(0.5))
    await asyncio.sleep(0.3)
    assert not due.done(), "the first node takes no connection yet"
    listener.listen(1)
    await asyncio.wait_for(due, 1)
    listener.close()
    assert not await takes_connections(("127.0.0.1", port), 0.5)
