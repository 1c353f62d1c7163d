"""Guards on what sinks/rabbitmq/compat.py takes from pika's private API; no broker needed.

Each fails naming the pika version and what vanished, so an upgrade of pika
that renames or reshapes one of them is caught here, before the sink silently
falls back to one write per frame.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys

import pika
import pika.connection
import pika.frame
import pika.spec
import pytest
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.adapters.base_connection import BaseConnection

import sinks
from sinks.rabbitmq import compat

PIKA = "pika %s" % pika.__version__


class RecordingTransport:
    """Stands for pika's transport: keeps what the connection writes."""

    def __init__(self):
        self.writes = []

    def write(self, data):
        self.writes.append(bytes(data))


def private(owner, name):
    value = getattr(owner, name, None)
    if value is None:
        pytest.fail("%s: %s.%s is gone; sinks/rabbitmq/compat.py relies on it" % (PIKA, owner.__name__, name))
    return value


def positional_parameters(function):
    return [
        parameter.name
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]


@pytest.mark.parametrize(
    "name, shape",
    [("_output_marshaled_frames", ["self", "marshaled_frames"]), ("_adapter_emit_data", ["self", "data"])],
)
def test_the_private_methods_batching_relies_on_keep_their_shape(name, shape):
    method = private(AsyncioConnection, name)
    assert callable(method), "%s: AsyncioConnection.%s is no longer a method" % (PIKA, name)
    assert len(positional_parameters(method)) == len(shape), "%s: AsyncioConnection.%s%s, compat expects (%s)" % (
        PIKA,
        name,
        inspect.signature(method),
        ", ".join(shape),
    )


def test_pika_sends_frames_and_messages_through_output_marshaled_frames():
    # Source, not behaviour: were pika to write some frames another way, batching would miss them (and could
    # reorder them); nothing else would show it.
    for name in ("_send_frame", "_send_message"):
        source = inspect.getsource(private(pika.connection.Connection, name))
        assert "_output_marshaled_frames(" in source, "%s: Connection.%s no longer calls _output_marshaled_frames" % (
            PIKA,
            name,
        )
    source = inspect.getsource(private(BaseConnection, "_adapter_emit_data"))
    assert "self._transport.write(" in source, "%s: BaseConnection._adapter_emit_data no longer writes to %s" % (
        PIKA,
        compat.TRANSPORT_ATTRIBUTE,
    )


@pytest.fixture
def connection_of():
    """A connection of the given class on the running loop that never connects: the workflow is left to the test."""

    def make(cls):
        loop = asyncio.get_running_loop()
        return cls(pika.ConnectionParameters(), custom_ioloop=loop, internal_connection_workflow=False)

    return make


@pytest.mark.gen_test
async def test_a_connection_holds_no_transport_until_it_connects(connection_of):
    connection = connection_of(compat.BatchingConnection)
    assert hasattr(connection, compat.TRANSPORT_ATTRIBUTE), "%s: a connection has no %s attribute any more" % (
        PIKA,
        compat.TRANSPORT_ATTRIBUTE,
    )
    assert getattr(connection, compat.TRANSPORT_ATTRIBUTE) is None
    assert connection.batches_writes, "%s: compat found a private part missing and writes frame by frame" % PIKA


def publish_twice_and_beat(connection):
    """Hand the connection what pika's ``_send_message`` and ``_send_frame`` do for two publishes and a heartbeat."""
    output = private(type(connection), "_output_marshaled_frames")
    for body in (b'{"n":1}', b'{"n":2}'):
        method = pika.spec.Basic.Publish(exchange="", routing_key="q", mandatory=True)
        frames = [
            pika.frame.Method(1, method),
            pika.frame.Header(1, len(body), pika.spec.BasicProperties(delivery_mode=2)),
            pika.frame.Body(1, body),
        ]
        output(connection, [frame.marshal() for frame in frames])
    output(connection, [pika.frame.Heartbeat().marshal()])


@pytest.mark.gen_test
async def test_the_frames_of_one_loop_iteration_go_out_in_one_write(connection_of):
    stock, batching = connection_of(AsyncioConnection), connection_of(compat.BatchingConnection)
    for connection in (stock, batching):
        setattr(connection, compat.TRANSPORT_ATTRIBUTE, RecordingTransport())
        publish_twice_and_beat(connection)
    assert batching._transport.writes == [], "written before the end of the loop iteration"
    await asyncio.sleep(0)
    assert len(stock._transport.writes) == 7
    assert batching._transport.writes == [b"".join(stock._transport.writes)]
    assert (
        (batching.frames_sent, batching.bytes_sent)
        == (stock.frames_sent, stock.bytes_sent)
        == (
            7,
            len(batching._transport.writes[0]),
        )
    )


@pytest.mark.gen_test
async def test_without_what_it_relies_on_the_connection_writes_as_before(connection_of, monkeypatch):
    monkeypatch.setattr(compat, "batching_methods_present", lambda: False)
    connection = connection_of(compat.BatchingConnection)
    assert not connection.batches_writes
    setattr(connection, compat.TRANSPORT_ATTRIBUTE, RecordingTransport())
    publish_twice_and_beat(connection)
    assert len(connection._transport.writes) == 7  # at once, one write per frame: pika's own path


@pytest.mark.gen_test
async def test_frames_left_when_the_transport_is_lost_are_dropped(connection_of):
    connection = connection_of(compat.BatchingConnection)
    setattr(connection, compat.TRANSPORT_ATTRIBUTE, RecordingTransport())
    publish_twice_and_beat(connection)
    setattr(connection, compat.TRANSPORT_ATTRIBUTE, None)  # as pika does when the socket goes
    loop = asyncio.get_running_loop()
    errors = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert errors == []


def test_the_package_imports_without_pika(monkeypatch):
    """A file-only install: ``sinks.rabbitmq`` imports, and its options say how to install pika."""
    monkeypatch.setattr(sinks, "rabbitmq", sys.modules["sinks.rabbitmq"])
    for name in list(sys.modules):
        if name == "pika" or name.startswith(("pika.", "sinks.rabbitmq")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pika", None)  # import pika -> ImportError
    without_pika = importlib.import_module("sinks.rabbitmq")
    assert importlib.import_module("sinks.rabbitmq.compat").pika is None
    with pytest.raises(Exception, match="needs pika"):
        without_pika.RabbitMQSink.OPTIONS({})
