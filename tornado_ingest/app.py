"""The application factory: routes, and the sinks built once per process."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Tuple

import tornado.web

from sinks.base import Sink
from tornado_ingest.config import Config
from tornado_ingest.handlers import HealthHandler, IngestHandler, NotFoundHandler

log = logging.getLogger(__name__)


class Context:
    """What the handlers share: settings, datasets, sinks and the in-flight count."""

    def __init__(self, config: Config, sinks: Dict[str, Sink]):
        self.config = config
        self.server = config.server
        self.datasets = config.datasets
        self.sinks = sinks
        self.inflight = 0
        self._idle: Optional[asyncio.Event] = None

    def request_started(self) -> None:
        self.inflight += 1

    def request_finished(self) -> None:
        self.inflight -= 1
        if self.inflight == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in flight; False if ``timeout`` ran out first."""
        if self.inflight == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self._idle = None


def build_sinks(config: Config) -> Dict[str, Sink]:
    """One sink object per configured sink; nothing connects until ``start``."""
    return {name: spec.build() for name, spec in config.sinks.items()}


def get_handlers(context: Context) -> List[Tuple[str, Any, Dict[str, Any]]]:
    kwargs = {"context": context}
    return [
        (r"/v2/data/in/([^/]+)", IngestHandler, kwargs),
        (r"/health", HealthHandler, kwargs),
    ]


class IngestApplication(tornado.web.Application):
    """A Tornado application that owns its sinks: ``start`` them, ``close`` them."""

    def __init__(self, config: Config, sinks: Optional[Dict[str, Sink]] = None, **settings: Any):
        self.context = Context(config, sinks if sinks is not None else build_sinks(config))
        super().__init__(
            get_handlers(self.context),
            default_handler_class=NotFoundHandler,
            default_handler_args={"context": self.context},
            **settings,
        )

    @property
    def sinks(self) -> Dict[str, Sink]:
        return self.context.sinks

    async def start(self) -> None:
        for sink in self.sinks.values():
            await sink.start()
            log.info("sink %r started: %s", sink.name, sink.health())

    async def close(self) -> None:
        for sink in self.sinks.values():
            try:
                await sink.close()
            except Exception:  # one sink's failure must not keep the others open
                log.exception("sink %r did not close cleanly", sink.name)


def make_app(config: Config, sinks: Optional[Dict[str, Sink]] = None, **settings: Any) -> IngestApplication:
    return IngestApplication(config, sinks, **settings)
