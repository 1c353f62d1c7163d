"""The application factory: routes, and the sinks built once per process."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import tornado.web

from sinks.base import Sink
from tornado_ingest.access_log import log_request
from tornado_ingest.config import Config
from tornado_ingest.context import Context
from tornado_ingest.handlers import HealthHandler, IngestHandler, NotFoundHandler, ReadyHandler

log = logging.getLogger(__name__)


def build_sinks(config: Config) -> Dict[str, Sink]:
    """One sink object per configured sink; nothing connects until ``start``."""
    return {name: spec.build() for name, spec in config.sinks.items()}


def get_handlers(context: Context) -> List[Tuple[str, Any, Dict[str, Any]]]:
    kwargs = {"context": context}
    return [
        # A trailing slash is the same route (Express, behind the upstream API, ignores it too).
        (r"/v2/data/in/([^/]+)/?", IngestHandler, kwargs),
        (r"/health/?", HealthHandler, kwargs),
        (r"/ready/?", ReadyHandler, kwargs),
    ]


class IngestApplication(tornado.web.Application):
    """A Tornado application that owns its sinks: ``start`` them, ``close`` them."""

    def __init__(self, config: Config, sinks: Optional[Dict[str, Sink]] = None, **settings: Any):
        self.context = Context.build(config, sinks if sinks is not None else build_sinks(config))
        super().__init__(
            get_handlers(self.context),
            default_handler_class=NotFoundHandler,
            default_handler_args={"context": self.context},
            log_function=log_request,
            **settings,
        )

    @property
    def sinks(self) -> Dict[str, Sink]:
        return self.context.router.sinks

    async def start(self) -> None:
        self.context.bodies.start()
        await self.context.idempotency.start()
        for sink in self.sinks.values():
            await sink.start()
            log.info("sink %r started: %s", sink.name, "up" if sink.is_up else "down: %s" % sink.health().error)
        keys = self.context.config.keys
        if keys.enabled:
            log.info("API keys required on the ingest endpoint (%d keys)", len(keys.keys))
        else:
            log.warning("no API keys configured: anyone who can reach the ingest endpoint may write to every dataset")

    async def close(self) -> None:
        self.context.bodies.stop()
        for sink in self.sinks.values():
            try:
                await sink.close()
            except Exception:  # one sink's failure must not keep the others open
                log.exception("sink %r did not close cleanly", sink.name)
        await self.context.idempotency.close()


def make_app(config: Config, sinks: Optional[Dict[str, Sink]] = None, **settings: Any) -> IngestApplication:
    return IngestApplication(config, sinks, **settings)
