"""The running service in one process: the Context in force, and what outlives a reload of the config.

Handlers take ``service.context`` once, when their request starts, so a request
sees one config from start to end whatever a reload does meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Dict, Optional, Set

import tornado.ioloop

from sinks.base import Sink
from tornado_ingest import heap
from tornado_ingest.config import Config
from tornado_ingest.context import Context
from tornado_ingest.delivery import SinkGate

log = logging.getLogger(__name__)

GAUGES_EVERY_MS = 1000  # how often each sink's up/down goes into the metrics
RETIRE_POLL = 0.05  # seconds between looks at a retired sink's records in flight


def build_sinks(config: Config) -> Dict[str, Sink]:
    """One sink object per configured sink; nothing connects until ``start``."""
    return {name: spec.build() for name, spec in config.sinks.items()}


class Service:
    def __init__(self, config: Config, sinks: Optional[Dict[str, Sink]] = None) -> None:
        self.context = Context.build(config, sinks if sinks is not None else build_sinks(config))
        self._gauges: Optional[tornado.ioloop.PeriodicCallback] = None
        self._retiring: Set["asyncio.Task[None]"] = set()
        self._started: Optional[asyncio.Event] = None
        self.manages_heap = False  # True in the service's own process (server.serve): see tornado_ingest.heap

    @property
    def started(self) -> asyncio.Event:
        """Set once the sinks of the first config have started (made on the loop, at first use)."""
        if self._started is None:
            self._started = asyncio.Event()
        return self._started

    @property
    def sinks(self) -> Dict[str, Sink]:
        return self.context.router.sinks

    async def start(self) -> None:
        context = self.context
        context.bodies.start()
        await context.idempotency.start()
        for sink in self.sinks.values():
            await sink.start()
            log.info("sink %r started: %s", sink.name, "up" if sink.is_up else "down: %s" % sink.health().error)
        self._gauges = tornado.ioloop.PeriodicCallback(self.refresh_gauges, GAUGES_EVERY_MS)
        self._gauges.start()
        self.refresh_gauges()
        if self.manages_heap:
            heap.freeze()
        self.started.set()
        keys = context.config.keys
        if keys.enabled:
            log.info("API keys required on the ingest endpoint (%d keys)", len(keys.keys))
        else:
            log.warning("no API keys configured: anyone who can reach the ingest endpoint may write to every dataset")

    def refresh_gauges(self) -> None:
        self.context.router.refresh_gauges()

    def settle_heap(self) -> None:
        """After a reload: the heap thawed now, frozen again once the sinks it retired are closed."""
        if not self.manages_heap:
            return
        heap.thaw()
        task = asyncio.ensure_future(self._freeze_when_retired())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _freeze_when_retired(self) -> None:
        retiring = [task for task in self._retiring if task is not asyncio.current_task()]
        if retiring:
            await asyncio.wait(retiring)
        heap.freeze()

    def retire(self, gate: SinkGate, timeout: float) -> None:
        """A sink a reload no longer uses: closed once its records in flight are answered (at most ``timeout``)."""
        task = asyncio.ensure_future(self._retire(gate, timeout))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, gate: SinkGate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while gate.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(RETIRE_POLL)
        try:
            await gate.sink.close()
            log.info("sink %r of the previous config closed", gate.name)
        except Exception:
            log.exception("sink %r of the previous config did not close cleanly", gate.name)

    async def close(self) -> None:
        self.context.bodies.stop()
        if self._gauges is not None:
            self._gauges.stop()
        if self._retiring:
            await asyncio.wait(list(self._retiring))
        for sink in self.sinks.values():
            try:
                await sink.close()
            except Exception:  # one sink's failure must not keep the others open
                log.exception("sink %r did not close cleanly", sink.name)
        await self.context.idempotency.close()
