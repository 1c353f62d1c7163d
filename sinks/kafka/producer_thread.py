"""The one thread per sink that owns the ``KafkaProducer``: builds it, sends what the loop hands over, flushes at close.

Everything that may block on Kafka happens here, never on the IOLoop:
building the producer (retried with a growing pause while Kafka is away),
``send`` (a full buffer), ``flush`` and ``close``. The thread reads the
records of each loop iteration from a ``BatchQueue`` and says what happened
through a ``LoopInbox``; it never touches the sink itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Dict, Iterable, Optional, Sequence

from sinks.base import Receipt, SinkUnavailable, describe_error
from sinks.handoff import BatchQueue, LoopInbox
from sinks.kafka import compat
from sinks.kafka.messages import Acknowledged, ConnectFailed, Failed, Message, NotSent, Outgoing, ProducerReady
from sinks.kafka.probe import ANSWER_WITHIN, PROBE_INTERVAL, HealthProbe
from sinks.kafka.waiting_room import WaitingRoom
from sinks.redact import redact

log = logging.getLogger(__name__)

#: pauses between attempts to build the producer: the first, and the longest.
FIRST_RETRY = 0.5
LONGEST_RETRY = 5.0


class ProducerThread(threading.Thread):
    """Owns the ``KafkaProducer`` of one sink; stops once the ``BatchQueue`` is closed and all is flushed."""

    def __init__(
        self,
        sink_name: str,
        producer_config: Dict[str, Any],
        send_timeout: float,
        secrets: Sequence[str],
        outgoing: BatchQueue[Outgoing],
        inbox: LoopInbox[Message],
    ) -> None:
        super().__init__(name="kafka-sink-%s" % sink_name, daemon=True)
        self.sink_name = sink_name
        self._config = producer_config
        self._send_timeout = send_timeout
        self._secrets = secrets
        self._outgoing = outgoing
        self._inbox = inbox
        self._producer: Any = None
        self._waiting: Optional[WaitingRoom] = None

    def run(self) -> None:
        try:
            self._producer = self._build()
            if self._producer is not None:
                self._serve()
        finally:
            self._close()

    # -- building the producer ------------------------------------------------------

    def _build(self) -> Any:
        """The producer, once Kafka lets it be built; None if told to stop first."""
        pause = FIRST_RETRY
        while True:
            try:
                producer = compat.build_producer(self._config)
            except Exception as exc:  # NoBrokersAvailable, bad option values, ...
                reason = redact("cannot connect to Kafka: %s" % describe_error(exc), self._secrets)
                self._inbox.post(ConnectFailed(reason))  # the sink logs the change of state, not each attempt
                if self._pause(pause, SinkUnavailable(reason)):
                    return None
                pause = min(pause * 2, LONGEST_RETRY)
                continue
            self._inbox.post(ProducerReady())
            return producer

    def _pause(self, seconds: float, error: SinkUnavailable) -> bool:
        """Wait ``seconds``, failing with ``error`` the records handed over meanwhile; True if told to stop."""
        deadline = time.monotonic() + seconds
        while True:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return False
            records, stop = self._outgoing.take(timeout)
            self._fail(records, error)
            if stop:
                return True

    # -- sending --------------------------------------------------------------------

    def _serve(self) -> None:
        wake = self._outgoing.wake
        waiting = self._waiting = WaitingRoom(self._producer, wake)
        servers = self._config["bootstrap_servers"]
        probe = HealthProbe(self._producer, wake, servers, answer_within=min(self._send_timeout, ANSWER_WITHIN))
        stop = False
        while True:
            now = time.monotonic()
            next_look = min(probe.next_look(), waiting.next_look(now))
            records, stopped = self._outgoing.take(max(0.0, min(next_look - now, PROBE_INTERVAL)))
            stop = stop or stopped
            for outgoing in records:
                self._send(outgoing, waiting)
            now = time.monotonic()
            if records:
                probe.traffic(now)
            review = waiting.review(now)
            for outgoing in review.ready:
                self._send(outgoing, waiting)
            news = probe.check(now)
            if news is not None:
                review.news.append(news)
            if review.news:
                self._inbox.post_all(review.news)
            if stop and not waiting:  # records waiting for metadata get their chance first
                return

    def _send(self, outgoing: Outgoing, waiting: WaitingRoom) -> None:
        if outgoing.future.done():  # timed out already (or cancelled): no late duplicate
            self._inbox.post(NotSent(outgoing.future))
            return
        if waiting.must_wait(outgoing.topic):
            waiting.admit(outgoing)
            return
        record = outgoing.record
        try:
            sent = self._producer.send(outgoing.topic, value=record.value, key=record.key, headers=record.headers)
        except Exception as exc:  # a full buffer past max_block_ms, a record too large, ...
            self._inbox.post(Failed(outgoing.future, exc))
            return
        sent.add_callback(_acknowledged, self._inbox, outgoing.future)
        sent.add_errback(_failed, self._inbox, outgoing.future)

    # -- closing --------------------------------------------------------------------

    def _close(self) -> None:
        """Fail what can no longer be sent, then flush what is in flight and let the producer go."""
        error = SinkUnavailable("kafka sink %r is closing" % self.sink_name)
        if self._waiting is not None:
            self._fail(self._waiting.empty(), error)
        records, _ = self._outgoing.take(timeout=0)  # anything handed over after the stop
        self._fail(records, error)
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            producer.flush(timeout=self._send_timeout)
        except Exception as exc:
            log.warning("kafka sink %r: records still in flight at close: %s", self.sink_name, exc)
        try:
            producer.close(timeout=self._send_timeout)
        except Exception as exc:  # pragma: no cover - nothing better to do than say so
            log.warning("kafka sink %r did not close cleanly: %s", self.sink_name, exc)

    def _fail(self, records: Iterable[Outgoing], error: BaseException) -> None:
        failures = [Failed(outgoing.future, error) for outgoing in records]
        if failures:
            self._inbox.post_all(failures)


# kafka-python calls these in its sender thread, with the record's metadata or the error last.


def _acknowledged(inbox: LoopInbox[Message], future: "asyncio.Future[Optional[Receipt]]", metadata: Any) -> None:
    inbox.post(Acknowledged(future, metadata.topic, metadata.partition, metadata.offset))


def _failed(inbox: LoopInbox[Message], future: "asyncio.Future[Optional[Receipt]]", error: BaseException) -> None:
    inbox.post(Failed(future, error))
