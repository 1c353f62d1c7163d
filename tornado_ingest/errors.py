"""The one error hierarchy: every failed request is one of these.

Handlers only ``raise``; ``BaseHandler.write_error`` turns the exception into
the envelope. Each class carries its HTTP status, the envelope's
``responseCode`` and the short machine-readable ``error.code`` that also
appears in the log.
"""

from __future__ import annotations

from typing import Dict, Optional

from tornado.web import HTTPError


class IngestError(HTTPError):
    status_code = 500
    response_code = "INTERNAL_SERVER_ERROR"
    code = "INTERNAL_SERVER_ERROR"
    default_message = "Internal server error"

    #: headers every answer of this kind carries
    default_headers: Dict[str, str] = {}

    def __init__(self, message: Optional[str] = None, headers: Optional[Dict[str, str]] = None):
        self.message = message or self.default_message
        self.headers = {**self.default_headers, **(headers or {})}
        super().__init__(self.status_code, reason=None)

    def __str__(self) -> str:
        return "%s %s: %s" % (self.status_code, self.code, self.message)


class InvalidInput(IngestError):
    status_code = 400
    response_code = "BAD_REQUEST"
    code = "DATA_INGESTION_INVALID_INPUT"
    default_message = "Invalid request"


class DatasetNotFound(IngestError):
    status_code = 404
    response_code = "BAD_REQUEST"
    code = "DATASET_NOT_FOUND"
    default_message = "Dataset with id not found"


class TopicNotFound(IngestError):
    status_code = 404
    response_code = "BAD_REQUEST"
    code = "TOPIC_NOT_FOUND"
    default_message = "Entry topic is not defined"


class RouteNotFound(IngestError):
    status_code = 404
    response_code = "NOT_FOUND"
    code = "ROUTE_NOT_FOUND"
    default_message = "Route not found"


class Unauthorized(IngestError):
    status_code = 401
    response_code = "UNAUTHORIZED"
    code = "UNAUTHORIZED"
    default_message = "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
    default_headers = {"WWW-Authenticate": 'Bearer realm="tornado-ingest"'}


class Forbidden(IngestError):
    status_code = 403
    response_code = "FORBIDDEN"
    code = "FORBIDDEN"
    default_message = "This API key may not write to this dataset"


class MethodNotAllowed(IngestError):
    status_code = 405
    response_code = "METHOD_NOT_ALLOWED"
    code = "METHOD_NOT_ALLOWED"
    default_message = "Method not allowed"


class PayloadTooLarge(IngestError):
    status_code = 413
    response_code = "PAYLOAD_TOO_LARGE"
    code = "PAYLOAD_TOO_LARGE"
    default_message = "Request body is too large"


class UnsupportedMediaType(IngestError):
    status_code = 415
    response_code = "UNSUPPORTED_MEDIA_TYPE"
    code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "Send the body as JSON with 'Content-Type: application/json'"


class TooManyRequests(IngestError):
    status_code = 429
    response_code = "TOO_MANY_REQUESTS"
    code = "TOO_MANY_REQUESTS"
    default_message = "Too many records in flight to this sink; retry later"


class ServiceUnavailable(IngestError):
    status_code = 503
    response_code = "SERVICE_UNAVAILABLE"
    code = "SINK_UNAVAILABLE"
    default_message = "The sink cannot take records right now; retry later"


class IdempotencyKeyReused(IngestError):
    """The msgid was used before, within the dataset's idempotency window, with other data."""

    status_code = 409
    response_code = "CONFLICT"
    code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "This msgid was already used with other data; send new data with a new msgid"


class IdempotencyKeyInFlight(ServiceUnavailable):
    """A request with this msgid is still in flight after ``idempotency.wait``: retry for its answer."""

    code = "IDEMPOTENCY_KEY_IN_FLIGHT"
    default_message = "A request with this msgid is still in flight; retry later for its answer"


class IdempotencyStoreUnavailable(ServiceUnavailable):
    """The idempotency store cannot be reached and the dataset says ``when_store_down: refuse``."""

    code = "IDEMPOTENCY_STORE_UNAVAILABLE"
    default_message = "Retry-safe requests cannot be checked right now; retry later"


class InternalError(IngestError):
    """Anything unexpected: the details go to the log, never to the client."""


class NotReady(IngestError):
    """``/ready`` while a needed sink is down or the service is draining."""

    status_code = 503
    response_code = "SERVICE_UNAVAILABLE"
    code = "NOT_READY"
    default_message = "Not ready"


_BY_STATUS = {
    cls.status_code: cls
    for cls in (
        InvalidInput,
        Unauthorized,
        Forbidden,
        RouteNotFound,
        MethodNotAllowed,
        PayloadTooLarge,
        UnsupportedMediaType,
        TooManyRequests,
        ServiceUnavailable,
    )
}


def error_for_status(status_code: int, message: Optional[str] = None) -> IngestError:
    """The contract's error for a status Tornado answered by itself (an ``HTTPError`` it raised)."""
    return _BY_STATUS.get(status_code, InternalError)(message if status_code < 500 else None)
