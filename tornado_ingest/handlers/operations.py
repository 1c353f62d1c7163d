"""The operators' routes: ``/health``, ``/ready``, ``/metrics``, ``/openapi.json``, and every unknown path."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional

from sinks.base import Sink
from tornado_ingest import __version__, openapi
from tornado_ingest.envelope import (
    HEALTH_API_ID,
    METRICS_API_ID,
    READY_API_ID,
    build_envelope,
    local_time,
)
from tornado_ingest.errors import (
    IngestError,
    NotReady,
    RouteNotFound,
    Unauthorized,
)
from tornado_ingest.handlers.base import BaseHandler
from tornado_ingest.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

log = logging.getLogger(__name__)


class HealthHandler(BaseHandler):
    """``GET /health``: each sink's own report; 200 as long as the service runs."""

    api_id = HEALTH_API_ID
    allowed_methods = ("GET", "HEAD")  # load balancers probe with HEAD; Tornado sends no body for it

    def get(self) -> None:
        detailed = self.management or self.holds_a_key()
        reports = {name: health_report(sink, detailed) for name, sink in self.context.router.sinks.items()}
        idempotency = self.context.idempotency
        up = all(report["state"] == "up" for report in reports.values()) and not idempotency.stores_down
        result: Dict[str, Any] = {
            "status": "ok" if up else "degraded",
            "version": __version__,
            "uptime_seconds": int(time.time() - self.context.started_at),
            "sinks": reports,
        }
        if idempotency.gates:  # the retry-safe datasets' stores: their details (a masked URL) only in detail
            result["idempotency"] = idempotency.report(detailed)
        self.write_envelope(build_envelope(self.api_id, result=result))

    def head(self) -> None:
        self.get()

    def holds_a_key(self) -> bool:
        """A configured API key came with the request (the sinks' details are shown to its holder)."""
        keys = self.context.config.keys
        try:
            return keys.enabled and keys.identify(self.request.headers) is not None
        except Unauthorized:
            return False


def health_report(sink: Sink, detailed: bool) -> Dict[str, Any]:
    """A sink's ``Health`` as ``/health`` shows it: ``type``, ``state``, ``down_since``; ``detailed`` adds why
    (``error``) and its details (a masked URL, a directory: not for anyone who can reach the ingest port)."""
    health = sink.health()
    report: Dict[str, Any] = {"type": sink.type_name, "state": "up" if health.up else "down"}
    if detailed:
        report.update(health.details)
        if health.error is not None:
            report["error"] = health.error
    if not health.up and health.since is not None:
        report["down_since"] = local_time(health.since)
    return report


class MetricsHandler(BaseHandler):
    """``GET /metrics``: the Prometheus text format. Open on the management listener; on the ingest listener
    it needs an API key when keys are configured."""

    api_id = METRICS_API_ID

    def check_request(self) -> None:
        super().check_request()
        keys = self.context.config.keys
        if not self.management and keys.enabled:
            self.key_name = keys.identify(self.request.headers).name

    def get(self) -> None:
        self.service.refresh_gauges()
        self.set_header("Content-Type", METRICS_CONTENT_TYPE)
        self.finish(self.context.metrics.exposition())


class ReadyHandler(BaseHandler):
    """``GET /ready``: 503 while a sink some dataset needs is down, or while draining."""

    api_id = READY_API_ID
    allowed_methods = ("GET", "HEAD")

    def get(self) -> None:
        problem = self.context.not_ready_because()
        if problem is not None:
            raise NotReady(problem)
        result: Dict[str, Any] = {"status": "ready"}
        spooling = self.context.router.sinks_spooling(self.context.config.needed_sinks())
        if spooling:  # down, but their records are spooled (202): still worth sending traffic here
            result["spooling"] = spooling
        self.write_envelope(build_envelope(self.api_id, result=result))

    def head(self) -> None:
        self.get()


class NotFoundHandler(BaseHandler):
    """Every other path, whatever the method."""

    def check_request(self) -> None:
        raise self.route_not_found()

    def contract_error(self, status_code: int, exc: Optional[BaseException]) -> IngestError:
        return self.route_not_found() if status_code < 500 else super().contract_error(status_code, exc)

    def route_not_found(self) -> RouteNotFound:
        return RouteNotFound("No route for %s %s" % (self.request.method, self.request.path))


class OpenApiHandler(BaseHandler):
    """``GET /openapi.json``: the contract as an OpenAPI 3.1 document."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(openapi.as_json())
