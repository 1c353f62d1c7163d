"""Records the client was answered about before the broker was: what the broker finally said of them.

A record not acknowledged within ``send_timeout`` (``confirm_timeout``) is
spooled and answered 202, but the broker may still take the first attempt:
Kafka's producer keeps retrying it, a RabbitMQ confirm may come late. The
sink then raises ``InDoubt`` instead of a plain ``SinkUnavailable``, with a
future that the broker's later word settles to a ``Fate``; the replayer
holds the spooled copy (and the records of its destination after it) until
then, and sends it only if the first attempt did not arrive. That is how an
outage, or a slow broker, costs no duplicate. ``UNKNOWN`` (a connection lost
before the answer) is the one case without a crash where a record may reach
the broker twice.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Dict, Hashable

from sinks.base import SinkUnavailable
from sinks.handoff import settle


class Fate(enum.Enum):
    DELIVERED = "delivered"  # the first attempt arrived: the spooled copy is not sent
    NOT_DELIVERED = "not delivered"  # it never reached the broker, or the broker refused it: the copy is sent
    UNKNOWN = "unknown"  # it may have arrived (the connection was lost first): the copy is sent, maybe twice


class InDoubt(SinkUnavailable):
    """The record was handed to the broker, which has not answered yet; ``fate`` will say how it ended."""

    def __init__(self, message: str, fate: "asyncio.Future[Fate]") -> None:
        super().__init__(message)
        self.fate = fate


class Fates:
    """The records in doubt of one sink, by a key the sink chooses (a future, a delivery tag); on the loop only.

    Disabled (a sink without a spool), ``doubt`` gives back the plain error and nothing is kept.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._open: Dict[Hashable, "asyncio.Future[Fate]"] = {}

    def __bool__(self) -> bool:
        return bool(self._open)

    def doubt(self, key: Hashable, error: SinkUnavailable) -> SinkUnavailable:
        """The error for a record handed to the broker and not answered: ``InDoubt`` when a spool will want its fate."""
        if not self.enabled:
            return error
        fate: "asyncio.Future[Fate]" = asyncio.get_running_loop().create_future()
        self._open[key] = fate
        return InDoubt(str(error), fate)

    def decide(self, key: Hashable, fate: Fate) -> None:
        future = self._open.pop(key, None)
        if future is not None:
            settle(future, result=fate)

    def decide_all(self, fate: Fate) -> None:
        """Every record still in doubt ends as ``fate`` (the connection they were sent on is gone)."""
        opened, self._open = self._open, {}
        for future in opened.values():
            settle(future, result=fate)
