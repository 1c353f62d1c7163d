"""Thin handlers: they check, raise, and leave the answer to ``BaseHandler.write_error`` (one envelope builder)."""

from tornado_ingest.handlers.base import BaseHandler
from tornado_ingest.handlers.ingest import IngestHandler
from tornado_ingest.handlers.operations import (
    HealthHandler,
    MetricsHandler,
    NotFoundHandler,
    OpenApiHandler,
    ReadyHandler,
    health_report,
)

__all__ = [
    "BaseHandler",
    "HealthHandler",
    "IngestHandler",
    "MetricsHandler",
    "NotFoundHandler",
    "OpenApiHandler",
    "ReadyHandler",
    "health_report",
]
