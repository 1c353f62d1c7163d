"""The one way a broker sink uses its spool: straight to the broker while it takes records, else to disk.

A sink with a ``spool`` option sends every record through ``SpoolGate.send``
with its own ``publish`` (what ``send`` does without a spool):

- records of a destination that still has records spooled go to the spool
  too, behind them, so each destination keeps its order;
- otherwise the record goes to the broker, as without a spool (nothing more
  on the happy path than a dictionary lookup);
- if the broker cannot take it (``SinkUnavailable``: down, unreachable, not
  acknowledged within the timeout), it is spooled and the client is answered
  202 through a ``Receipt(spooled=True)``; a record in doubt carries its fate
  into the spool (see ``fates``). If the spool cannot take it either (full,
  disk trouble), the client gets the 503 it would have had.

The replayer delivers what the spool holds; ``health`` adds the spool's
figures to the sink's and says whether a down sink still takes records.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from sinks.base import Receipt, Record, SinkUnavailable
from sinks.health import Health
from sinks.spool.fates import Fate, InDoubt
from sinks.spool.replayer import Publish, Replayer
from sinks.spool.store import Spool

SPOOLED = Receipt(spooled=True)


class SpoolGate:
    def __init__(self, sink_name: str, options: Mapping[str, Any], publish: Publish) -> None:
        self.spool = Spool(sink_name, options)
        self.replayer = Replayer(self.spool, publish, options["replay_rate"])
        self._publish = publish

    async def start(self) -> None:
        await self.spool.start()
        self.replayer.start()

    async def send(self, destination: str, record: Record) -> Optional[Receipt]:
        if destination in self.spool.backlogs:
            return await self._spool(destination, record)
        try:
            return await self._publish(destination, record)
        except InDoubt as doubt:
            fate = doubt.fate
            if fate.done() and fate.result() is Fate.DELIVERED:
                return None  # the broker's answer came while the timeout was being handled
            return await self._spool(destination, record, doubt, fate)
        except SinkUnavailable as exc:
            return await self._spool(destination, record, exc)

    async def _spool(
        self, destination: str, record: Record, why: Optional[SinkUnavailable] = None, fate: Any = None
    ) -> Receipt:
        try:
            await self.spool.append(destination, record, fate)
        except SinkUnavailable as refused:
            raise SinkUnavailable("%s; %s" % (why, refused) if why is not None else str(refused)) from None
        return SPOOLED

    def health(self, sink: Health) -> Health:
        """The sink's health with the spool's figures; ``spooling`` while the sink is down and the spool takes
        records (the service stays ready)."""
        details = dict(sink.details)
        details["spool"] = dict(self.spool.report(), **self.replayer.report())
        return dataclasses.replace(sink, details=details, spooling=not sink.up and self.spool.accepting)

    async def stop_replay(self, timeout: float) -> None:
        await self.replayer.stop(timeout)

    async def close(self) -> None:
        await self.spool.close()
