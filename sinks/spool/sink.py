"""The base of the broker sinks that take a ``spool`` option: ``send`` and ``health`` go through the spool gate.

A subclass implements ``publish`` (what ``send`` does without a spool: return
once the broker has the record, raise ``SinkUnavailable`` when it cannot, or
``InDoubt`` through ``self.fates`` when the broker was handed the record and
did not answer in time) and ``broker_health``. It starts the spool once its
connection is started (``start_spool``) and, when closing, stops the replay
first (``stop_replay``) and closes the spool last (``close_spool``), so that
the records its own close fails still reach the spool.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Optional

from sinks.base import Receipt, Record, Sink
from sinks.health import Health
from sinks.spool.fates import Fates
from sinks.spool.gate import SpoolGate


class SpoolingSink(Sink):
    def __init__(self, name: str, options: Mapping[str, Any]):
        super().__init__(name, options)
        spool = options["spool"]
        #: the records answered before the broker was (a spool wants to know how they ended)
        self.fates = Fates(enabled=spool is not None)
        self.spool = SpoolGate(name, spool, self.publish) if spool is not None else None

    async def send(self, destination: str, record: Record) -> Optional[Receipt]:
        if self.spool is not None:
            return await self.spool.send(destination, record)
        return await self.publish(destination, record)

    async def publish(self, destination: str, record: Record) -> Optional[Receipt]:
        raise NotImplementedError("sink %r (%s) lacks publish()" % (self.name, type(self).__name__))

    def health(self) -> Health:
        health = self.broker_health()
        return self.spool.health(health) if self.spool is not None else health

    def broker_health(self) -> Health:
        raise NotImplementedError("sink %r (%s) lacks broker_health()" % (self.name, type(self).__name__))

    async def start_spool(self) -> None:
        if self.spool is not None:
            await self.spool.start()

    async def stop_replay(self, timeout: float) -> None:
        if self.spool is not None:
            await self.spool.stop_replay(timeout)

    async def close_spool(self) -> None:
        if self.spool is not None:
            await asyncio.sleep(0)  # the records just failed by the close reach the spool before it closes
            await self.spool.close()
