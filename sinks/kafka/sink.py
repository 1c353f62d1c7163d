"""The Kafka sink's loop side: it owns all state; the producer thread only reports (see ``messages``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, List, Mapping, Optional

from sinks.base import Receipt, Record, SinkError, SinkUnavailable
from sinks.handoff import LoopInbox, settle
from sinks.health import Health, HealthState
from sinks.kafka import drivers, options as kafka_options
from sinks.kafka.deadlines import SendDeadlines
from sinks.kafka.errors import as_sink_error
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
        self.driver_name: str = options["driver"]
        self.producer_config = kafka_options.producer_config(name, options)
        self.state = HealthState("not connected yet")
        self._secrets = kafka_options.secrets_of(options["producer"])
        self._details = self._health_details()
        self._connect_failed = False  # the last attempt to build the producer failed: fail fast meanwhile
        self._unreachable = False  # the probe found no broker to talk to: fail fast until one answers
        self._driver: Optional[drivers.Driver] = None
        self._deadlines: Optional[SendDeadlines] = None

    @classmethod
    def check_destination(cls, options: Dict[str, Any], destination: str) -> None:
        kafka_options.check_topic_name(destination)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        inbox: LoopInbox[Message] = LoopInbox(loop, self._take_news)
        self._deadlines = SendDeadlines(loop, self.send_timeout, self._timeout_error, self._records_expired)
        config, timeout = self.producer_config, self.send_timeout
        self._driver = drivers.start(self.driver_name, self.name, config, timeout, self._secrets, inbox)
        await self.start_spool()

    async def publish(self, destination: str, record: Record) -> Optional[Receipt]:
        """Hand the record to the driver; return once Kafka acknowledged it, with where it is."""
        driver, deadlines = self._driver, self._deadlines
        if driver is None or deadlines is None or driver.closed:
            raise SinkUnavailable("kafka sink %r is not running" % self.name)
        if self._connect_failed or self._unreachable:  # known away: 503 now, not after send_timeout
            raise SinkUnavailable(self.state.error or "Kafka is away")
        future = asyncio.get_running_loop().create_future()
        driver.submit(Outgoing(destination, record, future, time.monotonic() + self.send_timeout))  # may refuse
        deadlines.watch(future)
        return await future

    def broker_health(self) -> Health:
        if self._driver is None or self._driver.closed:
            error = "not started" if self._driver is None else "closed"
            return Health(up=False, error=error, since=self.state.since, details=self._details)
        return self.state.snapshot(**self._details)

    async def close(self) -> None:
        driver = self._driver
        if driver is None or driver.closed:
            return
        await self.stop_replay(self.send_timeout)
        await driver.stop()  # the driver's last news is taken in before close returns
        self._fail_waiting(SinkUnavailable("kafka sink %r closed" % self.name))
        await self.close_spool()

    # -- what the producer thread says -------------------------------------------------

    def _take_news(self, messages: List[Message]) -> None:
        """On the loop, in the order the driver posted them: the last event decides health."""
        for message in messages:
            if isinstance(message, Acknowledged):
                where = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
                settle(message.future, result=Receipt(where=where))
                if self.fates:
                    self.fates.decide(message.future, Fate.DELIVERED)
                self._mark_up()
            elif isinstance(message, Failed):
                failure = as_sink_error(message.error, self._secrets)
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
        security = self.options["producer"].get("security_protocol")
        if security not in (None, "PLAINTEXT"):
            details["security_protocol"] = security
        if self.driver_name != kafka_options.DEFAULT_DRIVER:
            details["driver"] = self.driver_name
        return details
