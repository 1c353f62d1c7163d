"""Publisher confirms: each published record awaits the broker's ack, nack or return, or its deadline."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from dataclasses import dataclass
from typing import Any, Optional

from sinks.base import DestinationNotFound, SinkUnavailable
from sinks.handoff import settle
from sinks.rabbitmq.compat import pika
from sinks.rabbitmq.topology import RunOperation
from sinks.spool.fates import Fate, Fates

log = logging.getLogger(__name__)


@dataclass
class PendingPublish:
    """A published record awaiting the broker's confirm."""

    future: "asyncio.Future[None]"
    routing_key: str
    body: bytes
    published_at: float  # loop time
    returned_reason: Optional[str] = None  # why the broker returned it (basic.return), which comes before the ack


class ConfirmTracker:
    """The records published on the current channel and not confirmed yet, keyed by delivery tag, oldest first.

    An ack settles a record (as not found if the broker returned it first), a
    nack fails it, and a sweep fails those whose confirm is overdue. With a
    spool (``fates`` enabled) an overdue record stays tracked as late, and its
    confirm, when it comes, says whether the spooled copy must be sent. Every
    method runs on the loop.
    """

    def __init__(self, sink_name: str, confirm_timeout: float, max_unconfirmed: int, fates: Fates) -> None:
        self.sink_name = sink_name
        self.confirm_timeout = confirm_timeout
        self.max_unconfirmed = max_unconfirmed
        self._fates = fates  # by delivery tag
        self._pending: "collections.OrderedDict[int, PendingPublish]" = collections.OrderedDict()
        #: answered already (overdue), their confirm still awaited; only with a spool
        self._late: "collections.OrderedDict[int, PendingPublish]" = collections.OrderedDict()
        self._last_delivery_tag = 0
        self._sweep_handle: Optional[asyncio.TimerHandle] = None
        self._sweep_interval = max(0.05, min(1.0, confirm_timeout / 10))

    @property
    def unconfirmed(self) -> int:
        return len(self._pending) + len(self._late)

    async def attach(self, channel: Any, run: RunOperation) -> None:
        """Put a fresh channel in confirm mode: its delivery tags count from 1."""
        channel.add_on_return_callback(self._on_return)
        await run(channel.confirm_delivery, self._on_confirm)
        self._last_delivery_tag = 0

    def ensure_room(self) -> None:
        """Refuse a record at once when ``max_unconfirmed`` records already await a confirm."""
        if self.unconfirmed >= self.max_unconfirmed:
            raise SinkUnavailable("%d records already await a confirm (max_unconfirmed)" % self.unconfirmed)

    def track(self, routing_key: str, body: bytes) -> "asyncio.Future[None]":
        """The record just published: the future its confirm settles."""
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[None]" = loop.create_future()
        self._last_delivery_tag += 1
        self._pending[self._last_delivery_tag] = PendingPublish(future, routing_key, body, loop.time())
        if self._sweep_handle is None:
            self._sweep_handle = loop.call_later(self._sweep_interval, self._sweep)
        return future

    def fail_all(self, reason: str) -> None:
        """Fail every record awaiting a confirm (the channel is gone, or the sink closes): whether the broker
        has them cannot be known any more."""
        pending, self._pending = self._pending, collections.OrderedDict()
        for tag, entry in pending.items():
            settle(entry.future, self._fates.doubt(tag, SinkUnavailable(reason)))
        self._late.clear()
        self._fates.decide_all(Fate.UNKNOWN)

    def stop(self) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        pending, late = self._pending, self._late
        if method.multiple:
            while late and next(iter(late)) <= method.delivery_tag:
                self._decide(*late.popitem(last=False), acked)
            while pending and next(iter(pending)) <= method.delivery_tag:
                self._resolve(pending.popitem(last=False)[1], acked)
        else:
            entry = pending.pop(method.delivery_tag, None)
            if entry is not None:
                self._resolve(entry, acked)
            elif late:
                entry = late.pop(method.delivery_tag, None)
                if entry is not None:
                    self._decide(method.delivery_tag, entry, acked)

    def _decide(self, tag: int, entry: PendingPublish, acked: bool) -> None:
        """A late record's confirm: the broker has it (its spooled copy is not sent), or not."""
        delivered = acked and entry.returned_reason is None
        self._fates.decide(tag, Fate.DELIVERED if delivered else Fate.NOT_DELIVERED)

    @staticmethod
    def _resolve(entry: PendingPublish, acked: bool) -> None:
        if not acked:
            settle(entry.future, SinkUnavailable("the broker refused the message (basic.nack)"))
        elif entry.returned_reason is not None:
            settle(entry.future, DestinationNotFound(entry.returned_reason))
        else:
            settle(entry.future)

    def _on_return(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        # basic.return carries no delivery tag: it is the oldest unconfirmed record with this key and body.
        for entry in itertools.chain(self._late.values(), self._pending.values()):
            if entry.returned_reason is None and entry.routing_key == method.routing_key and entry.body == body:
                entry.returned_reason = "no queue is bound to routing key %r on %s (%s %s)" % (
                    method.routing_key,
                    "exchange %r" % method.exchange if method.exchange else "the default exchange",
                    method.reply_code,
                    method.reply_text,
                )
                return

    def _sweep(self) -> None:
        """Fail the records whose confirm is overdue (oldest first)."""
        self._sweep_handle = None
        loop = asyncio.get_running_loop()
        pending = self._pending
        deadline = loop.time() - self.confirm_timeout
        expired = 0
        while pending and pending[next(iter(pending))].published_at <= deadline:
            tag, entry = pending.popitem(last=False)
            expired += 1
            overdue = SinkUnavailable("no confirm from the broker within %gs" % self.confirm_timeout)
            settle(entry.future, self._fates.doubt(tag, overdue))
            if self._fates.enabled:
                self._late[tag] = entry
        if expired:
            log.warning(
                "rabbitmq sink %r: %d records got no confirm within %gs", self.sink_name, expired, self.confirm_timeout
            )
        if pending:
            self._sweep_handle = loop.call_later(self._sweep_interval, self._sweep)
