"""``driver: confluent``: records go to librdkafka from the loop, whose network thread runs outside the GIL.

``Producer.produce`` only queues the record inside librdkafka and never blocks,
so it is called on the loop itself: a record crosses no Python thread on its
way out. A full queue (``BufferError``) or a record librdkafka refuses at once
(too large, a topic known not to exist) is a ``SinkError`` raised from
``submit``, before anything was sent. Delivery reports come back through the
``PollThread`` (the only caller of ``poll``) and the sink's ``LoopInbox``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Dict, Optional, Sequence

from sinks.base import SinkUnavailable, describe_error
from sinks.handoff import LoopInbox
from sinks.kafka import confluent_compat
from sinks.kafka.drivers import Driver
from sinks.kafka.errors import as_sink_error
from sinks.kafka.messages import ConnectFailed, Message, Outgoing, ProducerReady
from sinks.kafka.poll_thread import PollThread
from sinks.redact import redact


class ConfluentDriver(Driver):
    """A ``confluent_kafka.Producer`` fed on the loop, and the ``PollThread`` serving its reports."""

    def __init__(
        self,
        sink_name: str,
        config: Dict[str, Any],
        send_timeout: float,
        secrets: Sequence[str],
        inbox: LoopInbox[Message],
    ) -> None:
        self._closed = False
        self._sink_name = sink_name
        self._secrets = secrets
        self._inbox = inbox
        self._producer: Any = None
        self._thread: Optional[PollThread] = None
        self._why_not = "kafka sink %r has no producer" % sink_name
        try:
            self._producer = confluent_compat.build_producer(config)  # no network here: librdkafka connects later
        except Exception as exc:  # a config librdkafka refuses (a missing certificate file, ...)
            self._why_not = redact("cannot build the Kafka producer: %s" % describe_error(exc), secrets)
            inbox.post(ConnectFailed(self._why_not))
            return
        servers = config["bootstrap.servers"].split(",")
        self._thread = PollThread(sink_name, self._producer, servers, send_timeout, inbox)
        self._thread.start()
        inbox.post(ProducerReady())

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, outgoing: Outgoing) -> None:
        producer, thread = self._producer, self._thread
        if producer is None or thread is None:
            raise SinkUnavailable(self._why_not)
        record = outgoing.record
        try:
            producer.produce(
                outgoing.topic,
                record.value,
                record.key,
                headers=record.headers,
                on_delivery=functools.partial(thread.delivered, outgoing.future),
            )
        except BufferError:
            raise SinkUnavailable(
                "Kafka's send queue is full (%d records waiting for the broker)" % len(producer)
            ) from None
        except Exception as exc:  # KafkaException: too large, unknown topic, ...
            raise as_sink_error(exc, self._secrets) from None

    async def stop(self) -> None:
        self._closed = True
        thread = self._thread
        if thread is not None:
            thread.stop()
            await asyncio.get_running_loop().run_in_executor(None, thread.join)
        self._producer = self._thread = None  # the last references: librdkafka's threads end with the producer
        self._inbox.deliver()  # the thread's last reports are taken in before stop returns
