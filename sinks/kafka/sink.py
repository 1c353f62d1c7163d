"""The Kafka sink's loop side: it owns all state; the producer thread only reports (see ``messages``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, List, Mapping, Optional

from sinks.base import (
    DestinationNotFound,
    Receipt,
    Record,
    RecordTooLarge,
    SinkError,
    SinkUnavailable,
    describe_error,
)
from sinks.handoff import BatchQueue, LoopInbox, settle, stop_worker
from sinks.health import Health, HealthState
from sinks.kafka import compat, options as kafka_options
from sinks.kafka.deadlines import SendDeadlines
from sinks.kafka.messages import (
    Acknowledged,
    BrokerAnswered,
    ConnectFailed,
    Failed,
    Message,
    NotSent,
    Outgoing,
    ProducerReady,
    Trouble,
)
from sinks.kafka.producer_thread import ProducerThread
from sinks.redact import redact
from sinks.spool import Fate, SpoolingSink

log = logging.getLogger(__name__)


class KafkaSink(SpoolingSink):
    type_name = "kafka"
    OPTIONS = kafka_options.OPTIONS

    def __init__(self, name: str, options: Mapping[str, Any]):
        super().__init__(name, options)
        self.bootstrap_servers: List[str] = options["bootstrap_servers"]
        self.send_timeout: float = options["send_timeout"]
        self.producer_config = kafka_options.producer_config(name, options)
        self.state = HealthState("not connected yet")
        self._secrets = kafka_options.secrets_of(options["producer"])
        self._details = self._health_details()
        self._connect_failed = False  # the last attempt to build the producer failed: fail fast meanwhile
        self._unreachable = False  # the probe found no broker to talk to: fail fast until one answers
        self._outgoing: Optional[BatchQueue[Outgoing]] = None
        self._inbox: Optional[LoopInbox[Message]] = None
        self._deadlines: Optional[SendDeadlines] = None
        self._thread: Optional[ProducerThread] = None

    @classmethod
    def check_destination(cls, options: Dict[str, Any], destination: str) -> None:
        kafka_options.check_topic_name(destination)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._outgoing = BatchQueue(loop)
        self._inbox = LoopInbox(loop, self._take_news)
        self._deadlines = SendDeadlines(loop, self.send_timeout, self._timeout_error, self._records_expired)
        self._thread = ProducerThread(
            self.name, self.producer_config, self.send_timeout, self._secrets, self._outgoing, self._inbox
        )
        self._thread.start()
        await self.start_spool()

    async def publish(self, destination: str, record: Record) -> Optional[Receipt]:
        """Hand the record to the producer thread; return once Kafka acknowledged it, with where it is."""
        outgoing, deadlines = self._outgoing, self._deadlines
        if outgoing is None or deadlines is None or outgoing.closed:
            raise SinkUnavailable("kafka sink %r is not running" % self.name)
        if self._connect_failed or self._unreachable:  # known away: 503 now, not after send_timeout
            raise SinkUnavailable(self.state.error or "Kafka is away")
        future = asyncio.get_running_loop().create_future()
        outgoing.submit(Outgoing(destination, record, future, time.monotonic() + self.send_timeout))
        deadlines.watch(future)
        return await future

    def broker_health(self) -> Health:
        if self._outgoing is None or self._outgoing.closed:
            error = "not started" if self._outgoing is None else "closed"
            return Health(up=False, error=error, since=self.state.since, details=self._details)
        return self.state.snapshot(**self._details)

    async def close(self) -> None:
        outgoing, thread, inbox, deadlines = self._outgoing, self._thread, self._inbox, self._deadlines
        if outgoing is None or thread is None or inbox is None or deadlines is None or outgoing.closed:
            return
        await self.stop_replay(self.send_timeout)
        await stop_worker(outgoing, thread, inbox)  # the thread's last news is taken in before close returns
        self._fail_waiting(SinkUnavailable("kafka sink %r closed" % self.name))
        await self.close_spool()

    # -- what the producer thread says -------------------------------------------------

    def _take_news(self, messages: List[Message]) -> None:
        """On the loop, in the order the thread posted them: the last event decides health."""
        for message in messages:
            if isinstance(message, Acknowledged):
                where = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
                settle(message.future, result=Receipt(where=where))
                if self.fates:
                    self.fates.decide(message.future, Fate.DELIVERED)
                self._mark_up()
            elif isinstance(message, Failed):
                failure = self._as_sink_error(message.error)
                settle(message.future, failure)
                if self.fates:  # the thread's own refusals were never sent; kafka-python's may have been
                    sent = not isinstance(message.error, SinkError)
                    self.fates.decide(message.future, Fate.UNKNOWN if sent else Fate.NOT_DELIVERED)
                if isinstance(failure, SinkUnavailable):  # a missing topic or a refused record is no outage
                    self._mark_down(str(failure))
            elif isinstance(message, NotSent):
                self.fates.decide(message.future, Fate.NOT_DELIVERED)
            elif isinstance(message, BrokerAnswered):
                self._mark_up()
            elif isinstance(message, Trouble):
                self._mark_down(message.reason)
                if message.unreachable:
                    self._unreachable = True
                    self._fail_waiting(SinkUnavailable(message.reason))  # they would only wait out send_timeout
            elif isinstance(message, ProducerReady):
                self._connect_failed = False
            elif isinstance(message, ConnectFailed):
                self._connect_failed = True
                self._mark_down(message.reason)

    def _as_sink_error(self, error: BaseException) -> SinkError:
        if isinstance(error, SinkError):
            return error
        if compat.topic_does_not_exist(error):
            return DestinationNotFound("Kafka says the topic does not exist")
        if compat.record_too_large(error):
            return RecordTooLarge("record too large for Kafka: %s" % error)
        return SinkUnavailable(redact(describe_error(error), self._secrets))

    def _mark_up(self) -> None:
        self._unreachable = False
        if self.state.mark_up():
            log.info("kafka sink %r: Kafka answers; the sink is up", self.name)

    def _mark_down(self, reason: str, keep_cause: bool = False) -> None:
        if self.state.mark_down(redact(reason, self._secrets), keep_cause=keep_cause):
            log.warning("kafka sink %r is down: %s", self.name, self.state.error)

    # -- send_timeout ------------------------------------------------------------------

    def _timeout_error(self, future: "asyncio.Future[Optional[Receipt]]") -> SinkUnavailable:
        late = SinkUnavailable(
            "no acknowledgement from Kafka within %gs (%s)"
            % (self.send_timeout, self.state.error or "no error reported")
        )
        return self.fates.doubt(future, late)  # with a spool: InDoubt, the producer may still deliver it

    def _fail_waiting(self, error: SinkUnavailable) -> None:
        """Answer every record still waiting for Kafka's acknowledgement with ``error`` (in doubt, with a spool)."""
        if self._deadlines is not None:
            self._deadlines.fail_all(lambda future: self.fates.doubt(future, error))

    def _records_expired(self, count: int) -> None:
        # a timeout after a known cause: the cause says more
        self._mark_down("%d record(s) not acknowledged within %gs" % (count, self.send_timeout), keep_cause=True)

    def _health_details(self) -> Dict[str, Any]:
        """What ``/health`` shows beside up or down: where the sink connects (masked), and how, when not plain."""
        details: Dict[str, Any] = {
            "bootstrap_servers": [redact(server, self._secrets) for server in self.bootstrap_servers]
        }
        security = self.producer_config.get("security_protocol")
        if security not in (None, "PLAINTEXT"):
            details["security_protocol"] = security
        return details
