"""``driver: confluent``: the one thread that calls ``Producer.poll``, so delivery reports reach the loop.

confluent-kafka runs a record's ``on_delivery`` callback inside ``poll()`` (or
``flush()``), in the calling thread. This thread polls, collects the reports of
each poll as ``Acknowledged`` / ``Failed`` and posts them to the sink's
``LoopInbox`` together; between polls it runs the health probe. At stop it
flushes what is in flight (up to ``send_timeout``), serving the last reports.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, List, Optional, Sequence

from sinks.base import Receipt
from sinks.handoff import LoopInbox
from sinks.kafka import confluent_compat
from sinks.kafka.confluent_probe import ConfluentProbe
from sinks.kafka.messages import Acknowledged, Failed, Message
from sinks.kafka.probe import ANSWER_WITHIN

log = logging.getLogger(__name__)

#: seconds one ``poll`` waits for a delivery report when none is there.
POLL_TIMEOUT = 0.1


class PollThread(threading.Thread):
    """Serves one ``confluent_kafka.Producer``'s delivery reports; never touches the sink."""

    def __init__(
        self,
        sink_name: str,
        producer: Any,
        servers: Sequence[str],
        send_timeout: float,
        inbox: LoopInbox[Message],
    ) -> None:
        super().__init__(name="kafka-poll-%s" % sink_name, daemon=True)
        self.sink_name = sink_name
        self._producer = producer
        self._send_timeout = send_timeout
        self._inbox = inbox
        self._probe = ConfluentProbe(servers, answer_within=min(send_timeout, ANSWER_WITHIN))
        self._news: List[Message] = []  # this thread's alone: the reports of the current poll
        self._stop_asked = threading.Event()

    def delivered(self, future: "asyncio.Future[Optional[Receipt]]", error: Any, message: Any) -> None:
        """``on_delivery`` of each record (bound to its future): runs in this thread, inside ``poll``."""
        if error is None:
            self._news.append(Acknowledged(future, message.topic(), message.partition(), message.offset()))
        else:
            self._news.append(Failed(future, confluent_compat.as_exception(error)))

    def stop(self) -> None:
        """Any thread: flush and end after the current poll."""
        self._stop_asked.set()

    def run(self) -> None:
        producer, probe = self._producer, self._probe
        while not self._stop_asked.is_set():
            now = time.monotonic()
            if probe.due(now, busy=len(producer) > 0):  # the first at once: the sink is up as soon as Kafka answers
                self._news.append(probe.check(producer, now))
            producer.poll(POLL_TIMEOUT)
            self._hand_over()
        self._flush()

    def _hand_over(self) -> None:
        if self._news:
            news, self._news = self._news, []
            self._inbox.post_all(news)

    def _flush(self) -> None:
        """Deliver what is in flight, up to ``send_timeout``; then give up on the rest, as ``KafkaProducer.close``
        does, so that no record reaches Kafka from a closed sink (its spool, if any, has it: no late duplicate)."""
        producer = self._producer
        try:
            left = producer.flush(self._send_timeout)
            if left:
                log.warning("kafka sink %r: %d record(s) still in flight at close", self.sink_name, left)
                producer.purge()  # each gets its delivery report now, failed: _PURGE_QUEUE / _PURGE_INFLIGHT
                producer.flush(0)
        except Exception as exc:  # pragma: no cover - nothing better to do than say so
            log.warning("kafka sink %r did not close cleanly: %s", self.sink_name, exc)
        self._hand_over()
        self._producer = None  # with the driver's, the last reference: librdkafka's threads end with it
