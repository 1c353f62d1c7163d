"""What goes between the loop and the producer thread.

Loop -> thread: ``Outgoing`` records, through a ``BatchQueue``. Thread -> loop:
the messages below, through one ``LoopInbox``; the loop side alone turns them
into settled futures and health, so the thread never touches the sink's state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NamedTuple, Optional, Union

from sinks.base import Receipt, Record


class Outgoing(NamedTuple):
    """One record for Kafka, and who waits for it."""

    topic: str
    record: Record
    future: "asyncio.Future[Optional[Receipt]]"
    deadline: float  # time.monotonic() after which nobody waits any more (send_timeout)

    def abandoned(self, now: float) -> bool:
        """Timed out (or cancelled) on the loop already: sending it now would only make a late duplicate."""
        return self.deadline <= now or self.future.done()


@dataclass(frozen=True)
class Acknowledged:
    """Kafka has the record, at this partition and offset."""

    future: "asyncio.Future[Optional[Receipt]]"
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Failed:
    """The record will not reach Kafka: ``error`` from kafka-python, or a ``SinkError`` already."""

    future: "asyncio.Future[Optional[Receipt]]"
    error: BaseException


@dataclass(frozen=True)
class NotSent:
    """The record was never handed to the producer: it timed out first (the spool, if any, has it)."""

    future: "asyncio.Future[Optional[Receipt]]"


@dataclass(frozen=True)
class BrokerAnswered:
    """A metadata request was answered: the broker is there, even when nothing is sent."""


@dataclass(frozen=True)
class Trouble:
    """Something says the broker is not there (a metadata request failed or went unanswered).

    ``unreachable``: no bootstrap server even takes a connection; records get 503 at once until it is back.
    """

    reason: str
    unreachable: bool = False


@dataclass(frozen=True)
class ProducerReady:
    """The producer is built: records can be sent."""


@dataclass(frozen=True)
class ConnectFailed:
    """The producer could not be built; the thread tries again after a pause."""

    reason: str


Message = Union[Acknowledged, Failed, NotSent, BrokerAnswered, Trouble, ProducerReady, ConnectFailed]
