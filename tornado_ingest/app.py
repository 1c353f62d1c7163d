"""The application factory: routes, and the sinks built once per process."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import tornado.web
from tornado.httputil import HTTPServerRequest

from sinks.base import Sink
from tornado_ingest.config import Config
from tornado_ingest.context import Context
from tornado_ingest.handlers import HealthHandler, IngestHandler, NotFoundHandler, ReadyHandler

log = logging.getLogger(__name__)
ACCESS_LOG = logging.getLogger("tornado.access")
CLIENT_GONE = 499


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


def log_request(handler: tornado.web.RequestHandler) -> None:
    """The access line, formatted only when its level is logged (a cost per request).

    The path without the query's values (a key sent as ``?api_key=`` must not
    reach a log file), and the name of the API key that was used, if any.
    """
    context = getattr(handler, "context", None)
    if isinstance(context, Context) and context.drain.over:
        return  # cut off by the drain's timeout: the drain's last line counts it
    # 499 (as nginx says it): the client closed its connection first, no answer reached it
    status = CLIENT_GONE if getattr(handler, "client_gone", False) else handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if ACCESS_LOG.isEnabledFor(level):
        request = handler.request
        key_name = getattr(handler, "key_name", None)
        ACCESS_LOG.log(
            level,
            "%d %s %s (%s) %.2fms%s",
            status,
            request.method,
            path_for_log(request),
            request.remote_ip,
            1000.0 * request.request_time(),
            " key=%s" % key_name if key_name else "",
        )


def path_for_log(request: HTTPServerRequest) -> str:
    """``/path?name=***&other=***``: the query's names, never its values."""
    if not request.query:
        return request.path
    names = [part.partition("=")[0] for part in request.query.split("&") if part]
    return "%s?%s" % (request.path, "&".join("%s=***" % name for name in names))


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


def make_app(config: Config, sinks: Optional[Dict[str, Sink]] = None, **settings: Any) -> IngestApplication:
    return IngestApplication(config, sinks, **settings)
