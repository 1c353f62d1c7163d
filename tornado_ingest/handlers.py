"""Thin handlers: they check, raise, and leave the answer to ``write_error``.

Every handler streams its request body (``stream_request_body``), so a body is
never buffered before its size is known to be allowed: the ingest handler
keeps up to ``server.max_body_bytes`` and the others discard what they get.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

from tornado.web import HTTPError, RequestHandler, stream_request_body

from sinks.base import Sink
from tornado_ingest import jsoncodec
from tornado_ingest.access_log import path_for_log
from tornado_ingest.context import Context
from tornado_ingest.delivery import answer_for
from tornado_ingest.envelope import HEALTH_API_ID, INGEST_API_ID, READY_API_ID, build_envelope, local_time
from tornado_ingest.errors import (
    DatasetNotFound,
    IngestError,
    MethodNotAllowed,
    NotReady,
    PayloadTooLarge,
    RouteNotFound,
    ServiceUnavailable,
    error_for_status,
)
from tornado_ingest.records import record_for_request
from tornado_ingest.request import (
    check_content_type,
    declared_length,
    gunzip,
    is_gzipped,
    parse_json,
    request_msgid,
    validate_request,
)
from tornado_ingest.tornado_compat import answer_finished, close_after_answer

log = logging.getLogger(__name__)


@stream_request_body
class BaseHandler(RequestHandler):
    """JSON envelope for every answer; requests counted while in flight."""

    api_id = INGEST_API_ID
    allowed_methods: Tuple[str, ...] = ("GET",)

    def initialize(self, context: Context) -> None:
        self.context = context
        self.msgid: Optional[str] = None
        self.key_name: Optional[str] = None  # the API key's name, for the access log
        self.body_length: Optional[int] = None
        self.client_gone = False  # the connection closed before the answer: the access log says 499
        self._counted = False

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")

    def prepare(self) -> None:
        self.context.drain.request_started(self.request)
        self._counted = True
        try:
            self.body_length = declared_length(self.request.headers)
            self.check_request()
        except Exception:
            # Refused before its body is read: the connection cannot carry another request. Say so
            # (Connection: close), so that a keep-alive client does not send one into a closing socket.
            close_after_answer(self.request)
            raise

    def check_request(self) -> None:
        """Refuse the request before its body is read (method; then API key and size)."""
        if self.request.method not in self.allowed_methods:
            raise self.method_not_allowed()

    def data_received(self, chunk: bytes) -> None:
        """Bodies this handler has no use for are dropped as they arrive."""

    def write_envelope(self, envelope: Dict[str, Any]) -> None:
        self.finish(jsoncodec.dumps(envelope))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, HTTPError) and not isinstance(exc, IngestError):
            close_after_answer(self.request)  # Tornado refused it before any of our code ran: its body is unread
        error = exc if isinstance(exc, IngestError) else self.contract_error(status_code, exc)
        self.set_status(error.status_code)
        for name, value in error.headers.items():
            self.set_header(name, value)
        if error.status_code == 503 and "Retry-After" not in error.headers:
            self.set_header("Retry-After", str(self.context.settings.retry_after))
        self.write_envelope(build_envelope(self.api_id, msgid=self.msgid, error=error))

    def contract_error(self, status_code: int, exc: Optional[BaseException]) -> IngestError:
        """The contract's error for an ``HTTPError`` Tornado raised itself (a method it does not know, a URL
        that is not UTF-8), or for anything unexpected."""
        if status_code == 405:
            return self.method_not_allowed()
        message = exc.log_message if isinstance(exc, HTTPError) and exc.log_message else None
        return error_for_status(status_code, message)

    def method_not_allowed(self) -> MethodNotAllowed:
        return MethodNotAllowed(
            "%s is not allowed here; use %s" % (self.request.method, " or ".join(self.allowed_methods)),
            headers={"Allow": ", ".join(self.allowed_methods)},
        )

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, IngestError) and (value.status_code < 500 or isinstance(value, NotReady)):
            return  # the client's mistake, or a readiness probe: the access log has the status
        if isinstance(value, ServiceUnavailable):
            log.warning("%s %s: %s (%s)", value.status_code, value.code, value.message, value.__cause__)
            return
        # Not Tornado's own log lines: they quote the whole URI, and a query may carry a secret.
        where = "%s %s" % (self.request.method, path_for_log(self.request))
        if isinstance(value, HTTPError) and value.status_code < 500:
            log.info("%d %s: %s", value.status_code, where, value.log_message or value.reason)
        else:
            log.error("unexpected error in %s", where, exc_info=(typ, value, tb))

    def on_finish(self) -> None:
        self._uncount()

    def on_connection_close(self) -> None:
        """The client closed (or half-closed) its connection before the answer: none can be sent."""
        super().on_connection_close()
        self.client_gone = True
        self._uncount()

    def _uncount(self) -> None:
        self.context.bodies.arrived(self)
        if self._counted:
            self._counted = False
            self.context.drain.request_finished()


class IngestHandler(BaseHandler):
    """``POST /v2/data/in/{dataset_id}``: validate, build the record, hand it to the sink."""

    allowed_methods = ("POST",)

    def check_request(self) -> None:
        super().check_request()
        self.key_name = self.context.config.keys.authorize(self.request.headers, self.path_args[0])
        self._limit = self.context.settings.max_body_bytes
        self._chunks: List[bytes] = []
        self._received = 0
        if self.body_length is not None and self.body_length > self._limit:
            raise self._too_large()
        self.context.bodies.expect(self)

    def data_received(self, chunk: bytes) -> None:
        if answer_finished(self):
            return
        self._received += len(chunk)
        if self._received > self._limit:
            # A chunked body has just outgrown the cap: answer now, drop the rest, close after the answer.
            self._chunks = []
            close_after_answer(self.request)
            self.send_error(413, exc_info=(PayloadTooLarge, self._too_large(), None))
            return
        self._chunks.append(chunk)

    async def post(self, dataset_id: str) -> None:
        self.context.bodies.arrived(self)
        if answer_finished(self):
            return
        headers = self.request.headers
        check_content_type(headers.get("Content-Type"))
        gzipped = is_gzipped(headers.get("Content-Encoding"))
        body = b"".join(self._chunks)
        self._chunks = []
        if gzipped:
            body = gunzip(body, self._limit)
        settings = self.context.settings
        document = parse_json(body, settings.max_json_depth)
        self.msgid = request_msgid(document)
        request = validate_request(document)
        data, msgid = request["data"], request["params"]["msgid"]
        if isinstance(data, list) and len(data) > settings.max_batch_events:
            raise PayloadTooLarge(
                "a batch of %d events is over server.max_batch_events (%d)" % (len(data), settings.max_batch_events)
            )

        dataset = self.context.config.datasets.get(dataset_id)
        if dataset is None:
            raise DatasetNotFound()
        record = record_for_request(dataset, data, msgid)
        if self.client_gone:
            return  # nobody to answer: the record is not handed over (the client must send it again)
        answer = answer_for(await self.context.router.deliver(dataset, record))
        self.set_status(answer.status)
        result = {"message": answer.message}
        self.write_envelope(
            build_envelope(INGEST_API_ID, msgid=msgid, result=result, response_code=answer.response_code)
        )

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge("body is larger than %d bytes (server.max_body_bytes)" % self._limit)


class HealthHandler(BaseHandler):
    """``GET /health``: each sink's own report; 200 as long as the service runs."""

    api_id = HEALTH_API_ID
    allowed_methods = ("GET", "HEAD")  # load balancers probe with HEAD; Tornado sends no body for it

    def get(self) -> None:
        reports = {name: health_report(sink) for name, sink in self.context.router.sinks.items()}
        status = "ok" if all(report["state"] == "up" for report in reports.values()) else "degraded"
        self.write_envelope(build_envelope(self.api_id, result={"status": status, "sinks": reports}))

    def head(self) -> None:
        self.get()


def health_report(sink: Sink) -> Dict[str, Any]:
    """A sink's ``Health`` as ``/health`` shows it: ``type``, ``state``, its details, ``error``, ``down_since``."""
    health = sink.health()
    report: Dict[str, Any] = {"type": sink.type_name, "state": "up" if health.up else "down"}
    report.update(health.details)
    if health.error is not None:
        report["error"] = health.error
    if not health.up and health.since is not None:
        report["down_since"] = local_time(health.since)
    return report


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
