"""``RabbitMQSink``: publishes each record and returns once the broker confirmed it."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, Mapping, Optional

from sinks.base import Receipt, Record, SinkUnavailable
from sinks.health import Health, HealthState
from sinks.rabbitmq.compat import pika
from sinks.rabbitmq.confirms import ConfirmTracker
from sinks.rabbitmq.connection import CLOSING_REASON, ConnectionKeeper
from sinks.rabbitmq.errors import describe
from sinks.rabbitmq.nodes import Backoff, NodeList
from sinks.rabbitmq.options import OPTIONS as RABBITMQ_OPTIONS, connection_nodes
from sinks.rabbitmq.topology import RunOperation, TopologyDeclarer
from sinks.spool import SpoolingSink

MAX_ROUTING_KEY_BYTES = 255
CONTENT_TYPE = "application/json"
PERSISTENT = 2  # delivery_mode
#: how often ``close`` looks whether the last confirms came, in seconds
DRAIN_POLL_INTERVAL = 0.01


class RabbitMQSink(SpoolingSink):
    """A connection keeper, a topology declarer and a confirm tracker, composed (see the package docstring)."""

    type_name = "rabbitmq"
    OPTIONS = RABBITMQ_OPTIONS

    def __init__(self, name: str, options: Mapping[str, Any]):
        super().__init__(name, options)
        self.exchange: str = options["exchange"]
        self.declare: Mapping[str, Any] = options["declare"]
        self.confirm_timeout: float = options["confirm_timeout"]
        self.nodes = connection_nodes(name, options)
        self.state = HealthState()
        self.topology = TopologyDeclarer(self.declare, self.exchange)
        self.confirms = ConfirmTracker(name, self.confirm_timeout, options["max_unconfirmed"], self.fates)
        self.keeper = ConnectionKeeper(
            name,
            NodeList(self.nodes, options["failback_after"]),
            connect_timeout=options["connect_timeout"],
            backoff=Backoff(options["reconnect_delay"], options["reconnect_max_delay"]),
            state=self.state,
            setup_channel=self._setup_channel,
            channel_lost=self.confirms.channel_lost,
            awaiting_confirms=self.confirms.awaiting,
        )

    @classmethod
    def check_destination(cls, options: Dict[str, Any], destination: str) -> None:
        if len(destination.encode("utf-8")) > MAX_ROUTING_KEY_BYTES:
            raise ValueError("a routing key is at most %d bytes" % MAX_ROUTING_KEY_BYTES)

    @property
    def connects(self) -> int:
        """Successful connects so far (1 + the reconnects)."""
        return self.keeper.connects

    async def start(self) -> None:
        await self.keeper.start()
        await self.start_spool()

    async def publish(self, destination: str, record: Record) -> Optional[Receipt]:
        """Publish the record; return once the broker confirmed it (the receipt says where it went)."""
        if not self.state.up:
            raise SinkUnavailable(self.state.error or "not connected")
        self.confirms.ensure_room()
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
            headers=record.header_texts,
        )
        channel = self.keeper.channel
        try:
            channel.basic_publish(self.exchange, destination, record.value, properties, mandatory=True)
        except Exception as exc:  # the channel or connection just closed
            raise SinkUnavailable("cannot publish: %s" % describe(exc)) from None
        await self.confirms.track(channel, destination, record.value)
        return Receipt(where={"exchange": self.exchange, "routing_key": destination, "confirmed": True})

    def broker_health(self) -> Health:
        more = {"nodes": [node.redacted_url for node in self.nodes]} if len(self.nodes) > 1 else {}
        return self.state.snapshot(
            url=self.keeper.node.redacted_url,  # the node in use (or tried next)
            **more,
            exchange=self.exchange,
            unconfirmed=self.confirms.unconfirmed,
            connects=self.keeper.connects,
        )

    async def close(self) -> None:
        """Wait up to ``confirm_timeout`` for the confirms still due, then close the connection."""
        await self.stop_replay(self.confirm_timeout)
        self.keeper.begin_closing()
        deadline = time.monotonic() + self.confirm_timeout
        while self.confirms.unconfirmed and self.keeper.ready and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_INTERVAL)
        self.confirms.fail_all(CLOSING_REASON)
        await self.keeper.stop()
        self.confirms.stop()
        await self.close_spool()

    async def _setup_channel(self, channel: Any, run: RunOperation) -> None:
        await self.confirms.attach(channel, run)
        await self.topology.declare(channel, run)
