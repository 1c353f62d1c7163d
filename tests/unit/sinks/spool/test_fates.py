"""What the broker finally says of a record answered before it: the sinks' loop sides settle the fate."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from sinks.base import SinkUnavailable
from sinks.spool import Fate, Fates, InDoubt
from sinks.spool.frames import SpooledRecord
from tests.support import skip_or_fail

try:
    from kafka import errors as kafka_errors

    from sinks.kafka import KafkaSink
    from sinks.kafka.messages import Acknowledged, Failed, NotSent
except ImportError:  # pragma: no cover
    kafka_errors = None


@pytest.fixture
def kafka_sink(tmp_path):
    if kafka_errors is None:
        skip_or_fail("kafka-python is not installed")
    return KafkaSink.from_options(
        "bus", {"bootstrap_servers": "127.0.0.1:1", "spool": {"directory": str(tmp_path / "spool")}}
    )


def late(sink):
    """A record Kafka did not acknowledge in time: its future and the InDoubt it was failed with."""
    future = asyncio.get_running_loop().create_future()
    error = sink._timeout_error(future)
    assert isinstance(error, InDoubt) and not error.fate.done()
    return future, error.fate


@pytest.mark.gen_test
async def test_kafka_late_acknowledgement_means_delivered(kafka_sink):
    future, fate = late(kafka_sink)
    kafka_sink._take_news([Acknowledged(future, "events", 0, 7)])
    assert fate.result() is Fate.DELIVERED


@pytest.mark.gen_test
async def test_kafka_record_never_handed_to_the_producer_is_not_delivered(kafka_sink):
    future, fate = late(kafka_sink)
    kafka_sink._take_news([NotSent(future)])
    assert fate.result() is Fate.NOT_DELIVERED


@pytest.mark.gen_test
async def test_kafka_record_the_producer_gave_up_on_may_have_arrived(kafka_sink):
    future, fate = late(kafka_sink)
    kafka_sink._take_news([Failed(future, kafka_errors.KafkaTimeoutError("expired"))])
    assert fate.result() is Fate.UNKNOWN
    future, fate = late(kafka_sink)
    kafka_sink._take_news([Failed(future, SinkUnavailable("the thread never sent it"))])
    assert fate.result() is Fate.NOT_DELIVERED


@pytest.mark.gen_test
async def test_without_a_spool_nothing_is_kept_and_the_error_is_plain():
    fates = Fates(enabled=False)
    error = SinkUnavailable("late")
    assert fates.doubt("key", error) is error and not fates


class FakeChannel:
    """What the tracker uses of a pika channel: its confirm and return callbacks."""

    def __init__(self):
        self.on_confirm = self.on_return = None

    def add_on_return_callback(self, callback):
        self.on_return = callback

    def confirm_delivery(self, callback):
        self.on_confirm = callback


async def run_now(operation, *args):
    operation(*args)


class TestRabbitMQConfirms:
    @pytest.fixture
    def tracker(self):
        from sinks.rabbitmq.confirms import ConfirmTracker

        return ConfirmTracker("rabbit", confirm_timeout=0.05, max_unconfirmed=10, fates=Fates(enabled=True))

    @staticmethod
    async def channel(tracker):
        channel = FakeChannel()
        await tracker.attach(channel, run_now)
        return channel

    @staticmethod
    def confirm(channel, tag, acked=True):
        import pika.spec

        method = pika.spec.Basic.Ack(delivery_tag=tag) if acked else pika.spec.Basic.Nack(delivery_tag=tag)
        channel.on_confirm(SimpleNamespace(method=method))

    async def overdue(self, tracker, channel, count):
        futures = [tracker.track(channel, "q", b"%d" % n) for n in range(count)]
        await asyncio.sleep(0.2)  # past confirm_timeout: the sweep answers them
        fates = []
        for future in futures:
            with pytest.raises(InDoubt) as caught:
                future.result()
            fates.append(caught.value.fate)
        return fates

    @pytest.mark.gen_test
    async def test_a_late_ack_means_delivered_a_late_nack_not(self, tracker):
        channel = await self.channel(tracker)
        first, second = await self.overdue(tracker, channel, 2)
        assert tracker.unconfirmed == 2  # still awaited
        self.confirm(channel, 1)
        self.confirm(channel, 2, acked=False)
        assert (first.result(), second.result()) == (Fate.DELIVERED, Fate.NOT_DELIVERED)
        assert tracker.unconfirmed == 0
        tracker.stop()

    @pytest.mark.gen_test
    async def test_a_lost_channel_leaves_its_records_unknown_and_no_other_channels(self, tracker):
        old, new = await self.channel(tracker), await self.channel(tracker)
        [overdue] = await self.overdue(tracker, old, 1)
        [overdue_on_new] = await self.overdue(tracker, new, 1)  # delivery tag 1 as well, on another channel
        pending = tracker.track(old, "q", b"x")
        tracker.channel_lost(old, "connection lost")
        assert overdue.result() is Fate.UNKNOWN
        with pytest.raises(InDoubt) as caught:
            pending.result()
        assert caught.value.fate.result() is Fate.UNKNOWN
        assert not overdue_on_new.done()  # the same tag on the channel still open: still awaited
        self.confirm(new, 1)
        assert overdue_on_new.result() is Fate.DELIVERED
        tracker.stop()


def test_a_spooled_record_gives_back_its_headers_as_bytes_and_as_text():
    record = SpooledRecord(b"{}", [("dataset", b"d"), ("msgid", b"m"), ("request_id", b"r-1")], key=b"k")
    assert record.headers == [("dataset", b"d"), ("msgid", b"m"), ("request_id", b"r-1")]
    assert record.header_texts == {"dataset": "d", "msgid": "m", "request_id": "r-1"}
    assert (record.dataset, record.msgid, record.key) == ("d", "m", b"k")
