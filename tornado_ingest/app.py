"""The application factories: the ingest listener's routes, and the management listener's."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import tornado.web

from sinks.base import Sink
from tornado_ingest.access_log import request_done
from tornado_ingest.config import Config
from tornado_ingest.context import Context
from tornado_ingest.handlers import (
    HealthHandler,
    IngestHandler,
    MetricsHandler,
    NotFoundHandler,
    OpenApiHandler,
    ReadyHandler,
)
from tornado_ingest.service import Service

Routes = List[Tuple[str, Any, Dict[str, Any]]]


def get_handlers(service: Service, management: bool = False) -> Routes:
    """The routes of one listener; ``management``: the operator's (no ingest; /health in detail, /metrics open)."""
    kwargs = {"service": service, "management": management}
    # A trailing slash is the same route (Express, behind the upstream API, ignores it too).
    routes = [] if management else [(r"/v2/data/in/([^/]+)/?", IngestHandler, kwargs)]
    return routes + [
        (r"/health/?", HealthHandler, kwargs),
        (r"/ready/?", ReadyHandler, kwargs),
        (r"/metrics/?", MetricsHandler, kwargs),
        (r"/openapi.json", OpenApiHandler, kwargs),
    ]


class IngestApplication(tornado.web.Application):
    """The ingest listener's application; its ``service`` owns the sinks (``start``, ``close``)."""

    def __init__(self, service: Service, management: bool = False, **settings: Any):
        self.service = service
        super().__init__(
            get_handlers(service, management),
            default_handler_class=NotFoundHandler,
            default_handler_args={"service": service, "management": management},
            log_function=request_done,
            **settings,
        )

    @property
    def context(self) -> Context:
        return self.service.context

    @property
    def sinks(self) -> Dict[str, Sink]:
        return self.service.sinks

    async def start(self) -> None:
        await self.service.start()

    async def close(self) -> None:
        await self.service.close()


def make_app(config: Config, sinks: Optional[Dict[str, Sink]] = None, **settings: Any) -> IngestApplication:
    return IngestApplication(Service(config, sinks), **settings)


def make_management_app(service: Service, **settings: Any) -> IngestApplication:
    """The management listener (``server.management_port``): /metrics, /health and /ready for operators."""
    return IngestApplication(service, management=True, **settings)
