"""The application factory: routes, and the sinks built once per process."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Tuple

import tornado.ioloop
import tornado.web

from sinks.base import DestinationNotFound, Record, RecordTooLarge, Sink, SinkUnavailable
from tornado_ingest.config import Config, Dataset
from tornado_ingest.errors import PayloadTooLarge, ServiceUnavailable, TooManyRequests, TopicNotFound
from tornado_ingest.handlers import HealthHandler, IngestHandler, NotFoundHandler, ReadyHandler

log = logging.getLogger(__name__)

BODY_SWEEP_MS = 1000  # how often late request bodies are looked for


class Context:
    """What the handlers share: settings, datasets, sinks, keys, and what is in flight.

    ``dispatch`` is the one place a record meets its sink: the per-sink bound on
    records in flight (429 past it) and the translation of sink failures into
    the contract's answers (503, 404, 413) live here and nowhere else.
    """

    def __init__(self, config: Config, sinks: Dict[str, Sink]):
        self.config = config
        self.server = config.server
        self.datasets = config.datasets
        self.keys = config.keys
        self.sinks = sinks
        self.inflight = 0
        self.draining = False
        self.records_in_flight = {name: 0 for name in sinks}
        self.max_inflight = {name: spec.max_inflight for name, spec in config.sinks.items()}
        self._retry_after = {"Retry-After": str(config.server.retry_after)}
        self._idle: Optional[asyncio.Event] = None
        self.receiving: Dict[Any, float] = {}  # handler -> loop time its body must have arrived by

    def body_expected(self, handler: Any) -> None:
        self.receiving[handler] = tornado.ioloop.IOLoop.current().time() + self.server.body_timeout

    def body_arrived(self, handler: Any) -> None:
        self.receiving.pop(handler, None)

    def cut_slow_bodies(self) -> None:
        """Close the connections whose request body is late (server.body_timeout)."""
        if not self.receiving:
            return
        now = tornado.ioloop.IOLoop.current().time()
        for handler, deadline in list(self.receiving.items()):
            if deadline <= now:
                del self.receiving[handler]
                log.info(
                    "closing %s: request body not complete after %ss",
                    handler.request.remote_ip,
                    self.server.body_timeout,
                )
                handler.request.connection.close()

    async def dispatch(self, dataset: Dataset, record: Record) -> None:
        """Hand one record to the dataset's sink; return once the sink has it."""
        name = dataset.sink
        in_flight = self.records_in_flight[name]
        if in_flight >= self.max_inflight.get(name, in_flight + 1):
            raise TooManyRequests(
                "sink %r has %d records in flight (max_inflight); retry later" % (name, in_flight),
                headers=dict(self._retry_after),
            )
        self.records_in_flight[name] = in_flight + 1
        sink = self.sinks[name]
        try:
            await sink.send(dataset.entry_topic, record)
        except SinkUnavailable as exc:
            raise ServiceUnavailable(
                "sink %r cannot take records now: %s" % (name, exc), headers=dict(self._retry_after)
            ) from exc
        except DestinationNotFound as exc:
            raise TopicNotFound("Entry topic %r does not exist: %s" % (dataset.entry_topic, exc)) from exc
        except RecordTooLarge as exc:
            raise PayloadTooLarge("sink %r refuses a record this large: %s" % (name, exc)) from exc
        finally:
            self.records_in_flight[name] -= 1

    def sinks_down(self) -> List[str]:
        """The sinks some dataset needs that say they are down."""
        return [name for name in self.config.needed_sinks() if not self.sinks[name].is_up]

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
        (r"/ready", ReadyHandler, kwargs),
    ]


ACCESS_LOG = logging.getLogger("tornado.access")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access line, formatted only when its level is logged (a cost per request)."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if ACCESS_LOG.isEnabledFor(level):
        request = handler.request
        ACCESS_LOG.log(
            level,
            "%d %s %s (%s) %.2fms",
            status,
            request.method,
            request.uri,
            request.remote_ip,
            1000.0 * request.request_time(),
        )


class IngestApplication(tornado.web.Application):
    """A Tornado application that owns its sinks: ``start`` them, ``close`` them."""

    def __init__(self, config: Config, sinks: Optional[Dict[str, Sink]] = None, **settings: Any):
        self.context = Context(config, sinks if sinks is not None else build_sinks(config))
        super().__init__(
            get_handlers(self.context),
            default_handler_class=NotFoundHandler,
            default_handler_args={"context": self.context},
            log_function=log_request,
            **settings,
        )
        self._body_sweeper: Optional[tornado.ioloop.PeriodicCallback] = None

    @property
    def sinks(self) -> Dict[str, Sink]:
        return self.context.sinks

    async def start(self) -> None:
        self._body_sweeper = tornado.ioloop.PeriodicCallback(self.context.cut_slow_bodies, BODY_SWEEP_MS)
        self._body_sweeper.start()
        for sink in self.sinks.values():
            await sink.start()
            log.info("sink %r started: %s", sink.name, sink.health())
        if self.context.keys.enabled:
            log.info("API keys required on the ingest endpoint (%d keys)", len(self.context.keys.keys))
        else:
            log.warning("no API keys configured: anyone who can reach the ingest endpoint may write to every dataset")

    async def close(self) -> None:
        if self._body_sweeper is not None:
            self._body_sweeper.stop()
        for sink in self.sinks.values():
            try:
                await sink.close()
            except Exception:  # one sink's failure must not keep the others open
                log.exception("sink %r did not close cleanly", sink.name)


def make_app(config: Config, sinks: Optional[Dict[str, Sink]] = None, **settings: Any) -> IngestApplication:
    return IngestApplication(config, sinks, **settings)
