"""The Kafka sink's loop side, without a broker: what the producer thread reports becomes settled futures and health.

The thread's messages are handed to the loop side as the ``LoopInbox`` would;
the last event decides up or down, a timeout keeps a known cause, a missing
topic says nothing of the broker, and no secret gets through.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from sinks.base import DestinationNotFound, Record, SinkUnavailable
from tests.support import skip_or_fail

try:
    from kafka import KafkaProducer, errors as kafka_errors

    from sinks.kafka import KafkaSink
    from sinks.kafka.messages import Acknowledged, BrokerAnswered, ConnectFailed, Failed, ProducerReady, Trouble
except ImportError:  # pragma: no cover
    kafka_errors = None

SECRET = "hunter2"
#: give up on learning the broker's version after a second (the option's name differs in kafka-python 2.x and 3.x)
QUICK_VERSION_PROBE = (
    {"bootstrap_timeout_ms": 1000}
    if kafka_errors is not None and "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG
    else {"api_version_auto_timeout_ms": 1000}
)


@pytest.fixture
def sink():
    if kafka_errors is None:
        skip_or_fail("kafka-python is not installed")
    return KafkaSink.from_options(
        "bus",
        {
            "bootstrap_servers": "127.0.0.1:1",
            "send_timeout": 0.5,
            # a producer that cannot be built: it must learn the broker's version from a port nobody listens on
            "producer": {"api_version": "auto", "sasl_plain_password": SECRET, **QUICK_VERSION_PROBE},
        },
    )


def tell(sink, *messages):
    sink._take_news(list(messages))


def test_the_last_event_decides(sink):
    assert not sink.health().up
    tell(sink, Trouble("metadata request failed"), BrokerAnswered())
    assert sink.state.up
    tell(sink, BrokerAnswered(), Trouble("no answer from Kafka for 3s"))
    assert (sink.state.up, sink.state.error) == (False, "no answer from Kafka for 3s")


@pytest.mark.gen_test
async def test_acknowledgements_settle_and_bring_the_sink_up(sink):
    future = asyncio.get_running_loop().create_future()
    tell(sink, Trouble("broker gone"), Acknowledged(future, "events", 2, 41))
    assert future.done() and future.result().where == {"topic": "events", "partition": 2, "offset": 41}
    assert sink.state.up


def test_a_timeout_after_a_known_cause_keeps_the_cause(sink):
    tell(sink, Trouble("broker gone"))
    sink._records_expired(3)
    assert sink.state.error == "broker gone"
    tell(sink, BrokerAnswered())
    sink._records_expired(2)
    assert (sink.state.up, sink.state.error) == (False, "2 record(s) not acknowledged within 0.5s")


@pytest.mark.gen_test
async def test_a_missing_topic_is_404_and_says_nothing_of_the_broker(sink):
    future = asyncio.get_running_loop().create_future()
    tell(sink, BrokerAnswered(), Failed(future, kafka_errors.UnknownTopicOrPartitionError()))
    with pytest.raises(DestinationNotFound):
        future.result()
    assert sink.state.up


@pytest.mark.gen_test
async def test_driver_errors_become_sink_unavailable_without_secrets(sink):
    future = asyncio.get_running_loop().create_future()
    tell(sink, Failed(future, kafka_errors.KafkaConnectionError("login %s refused" % SECRET)))
    with pytest.raises(SinkUnavailable) as caught:
        future.result()
    assert SECRET not in str(caught.value)
    assert "KafkaConnectionError" in sink.state.error
    assert SECRET not in sink.state.error


@pytest.mark.gen_test(timeout=20)
async def test_a_failed_connect_fails_fast_until_the_producer_is_ready(sink):
    assert sink.health().error == "not started"
    await sink.start()
    try:
        deadline = time.monotonic() + 10
        while "cannot connect" not in (sink.health().error or "") and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        error = sink.health().error
        assert error.startswith("cannot connect to Kafka: "), error
        error_type = error[len("cannot connect to Kafka: ") :].split(":")[0]  # NoBrokersAvailable(Error), by version
        assert error.count(error_type) == 1, error  # said once
        started = time.monotonic()
        with pytest.raises(SinkUnavailable, match="^cannot connect to Kafka: "):
            await sink.send("t", Record(b"{}", "d", "m1"))
        assert time.monotonic() - started < 0.1
        tell(sink, ProducerReady())  # as if a later attempt had worked: records are taken again
        tell(sink, ConnectFailed("cannot connect to Kafka: again"))
        assert sink.health().error == "cannot connect to Kafka: again"
    finally:
        await sink.close()
    assert sink.health().error == "closed"
    with pytest.raises(SinkUnavailable, match="not running"):
        await sink.send("t", Record(b"{}", "d", "m2"))
