"""Publisher confirms: each published record awaits the broker's ack, nack or return, or its deadline."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

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


class _Book:
    """The records published on one channel and not confirmed yet, keyed by delivery tag, oldest first."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.pending: "collections.OrderedDict[int, PendingPublish]" = collections.OrderedDict()
        #: answered already (overdue), their confirm still awaited; only with a spool
        self.late: "collections.OrderedDict[int, PendingPublish]" = collections.OrderedDict()
        self.last_delivery_tag = 0  # a channel in confirm mode numbers its messages from 1

    def fate_key(self, tag: int) -> Tuple[int, int]:
        return (id(self), tag)  # delivery tags repeat from one channel to the next


class ConfirmTracker:
    """The records awaiting the broker's confirm, in one book per channel published on.

    An ack settles a record (as not found if the broker returned it first), a
    nack fails it, and a sweep fails those whose confirm is overdue. A channel
    that is gone fails its own records only: when the sink moves to another
    node, the records still awaiting a confirm on the old channel keep waiting
    for it. With a spool (``fates`` enabled) an overdue record stays tracked as
    late, and its confirm, when it comes, says whether the spooled copy must be
    sent. Every method runs on the loop.
    """

    def __init__(self, sink_name: str, confirm_timeout: float, max_unconfirmed: int, fates: Fates) -> None:
        self.sink_name = sink_name
        self.confirm_timeout = confirm_timeout
        self.max_unconfirmed = max_unconfirmed
        self._fates = fates
        self._books: Dict[int, _Book] = {}  # id(channel) -> its book
        self._sweep_handle: Optional[asyncio.TimerHandle] = None
        self._sweep_interval = max(0.05, min(1.0, confirm_timeout / 10))

    @property
    def unconfirmed(self) -> int:
        return sum(len(book.pending) + len(book.late) for book in self._books.values())

    def awaiting(self, channel: Any) -> int:
        """How many records published on ``channel`` await a confirm."""
        book = self._books.get(id(channel))
        return len(book.pending) + len(book.late) if book is not None else 0

    async def attach(self, channel: Any, run: RunOperation) -> None:
        """Put a fresh channel in confirm mode, with a book of its own."""
        book = self._books[id(channel)] = _Book(channel)
        channel.add_on_return_callback(lambda _channel, method, _properties, body: self._on_return(book, method, body))
        await run(channel.confirm_delivery, lambda frame: self._on_confirm(book, frame))

    def ensure_room(self) -> None:
        """Refuse a record at once when ``max_unconfirmed`` records already await a confirm."""
        unconfirmed = self.unconfirmed
        if unconfirmed >= self.max_unconfirmed:
            raise SinkUnavailable("%d records already await a confirm (max_unconfirmed)" % unconfirmed)

    def track(self, channel: Any, routing_key: str, body: bytes) -> "asyncio.Future[None]":
        """The record just published on ``channel``: the future its confirm settles."""
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[None]" = loop.create_future()
        book = self._books.get(id(channel))
        if book is None:
            raise SinkUnavailable("the connection was lost as the record was published")
        book.last_delivery_tag += 1
        book.pending[book.last_delivery_tag] = PendingPublish(future, routing_key, body, loop.time())
        if self._sweep_handle is None:
            self._sweep_handle = loop.call_later(self._sweep_interval, self._sweep)
        return future

    def channel_lost(self, channel: Any, reason: str) -> None:
        """``channel`` is gone: fail the records awaiting a confirm on it."""
        book = self._books.pop(id(channel), None)
        if book is not None and book.channel is channel:
            self._fail(book, reason)

    def fail_all(self, reason: str) -> None:
        """Fail every record awaiting a confirm (the sink closes)."""
        for book in self._books.values():
            self._fail(book, reason)

    def stop(self) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None

    def _fail(self, book: _Book, reason: str) -> None:
        """Whether the broker has the book's records cannot be known any more: in doubt, and their fate unknown."""
        pending, book.pending = book.pending, collections.OrderedDict()
        for tag, entry in pending.items():
            settle(entry.future, self._fates.doubt(book.fate_key(tag), SinkUnavailable(reason)))
            self._fates.decide(book.fate_key(tag), Fate.UNKNOWN)
        late, book.late = book.late, collections.OrderedDict()
        for tag in late:
            self._fates.decide(book.fate_key(tag), Fate.UNKNOWN)

    def _on_confirm(self, book: _Book, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        pending, late = book.pending, book.late
        if method.multiple:
            while late and next(iter(late)) <= method.delivery_tag:
                self._decide(book, *late.popitem(last=False), acked)
            while pending and next(iter(pending)) <= method.delivery_tag:
                self._resolve(pending.popitem(last=False)[1], acked)
        else:
            entry = pending.pop(method.delivery_tag, None)
            if entry is not None:
                self._resolve(entry, acked)
            elif late:
                entry = late.pop(method.delivery_tag, None)
                if entry is not None:
                    self._decide(book, method.delivery_tag, entry, acked)

    def _decide(self, book: _Book, tag: int, entry: PendingPublish, acked: bool) -> None:
        """A late record's confirm: the broker has it (its spooled copy is not sent), or not."""
        delivered = acked and entry.returned_reason is None
        self._fates.decide(book.fate_key(tag), Fate.DELIVERED if delivered else Fate.NOT_DELIVERED)

    @staticmethod
    def _resolve(entry: PendingPublish, acked: bool) -> None:
        if not acked:
            settle(entry.future, SinkUnavailable("the broker refused the message (basic.nack)"))
        elif entry.returned_reason is not None:
            settle(entry.future, DestinationNotFound(entry.returned_reason))
        else:
            settle(entry.future)

    @staticmethod
    def _on_return(book: _Book, method: Any, body: bytes) -> None:
        # basic.return carries no delivery tag: it is the oldest unconfirmed record with this key and body.
        for entry in itertools.chain(book.late.values(), book.pending.values()):
            if entry.returned_reason is None and entry.routing_key == method.routing_key and entry.body == body:
                entry.returned_reason = "no queue is bound to routing key %r on %s (%s %s)" % (
                    method.routing_key,
                    "exchange %r" % method.exchange if method.exchange else "the default exchange",
                    method.reply_code,
                    method.reply_text,
                )
                return

    def _sweep(self) -> None:
        """Fail the records whose confirm is overdue (oldest first, in every book)."""
        self._sweep_handle = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() - self.confirm_timeout
        expired = 0
        for book in self._books.values():
            pending = book.pending
            while pending and pending[next(iter(pending))].published_at <= deadline:
                tag, entry = pending.popitem(last=False)
                expired += 1
                overdue = SinkUnavailable("no confirm from the broker within %gs" % self.confirm_timeout)
                settle(entry.future, self._fates.doubt(book.fate_key(tag), overdue))
                if self._fates.enabled:
                    book.late[tag] = entry
        if expired:
            log.warning(
                "rabbitmq sink %r: %d records got no confirm within %gs", self.sink_name, expired, self.confirm_timeout
            )
        if any(book.pending for book in self._books.values()):
            self._sweep_handle = loop.call_later(self._sweep_interval, self._sweep)
