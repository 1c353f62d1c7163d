"""The base of every handler: the envelope on every answer, requests counted, refusals before the body.

Every handler streams its request body (``stream_request_body``), so a body is
never buffered before its size is known to be allowed: the ingest handler
keeps up to ``server.max_body_bytes`` and the others discard what they get.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from tornado.web import HTTPError, RequestHandler, stream_request_body

from tornado_ingest import jsoncodec
from tornado_ingest.access_log import path_for_log
from tornado_ingest.envelope import (
    INGEST_API_ID,
    build_envelope,
)
from tornado_ingest.errors import (
    IngestError,
    MethodNotAllowed,
    NotReady,
    ServiceUnavailable,
    error_for_status,
)
from tornado_ingest.metrics import NOT_INGEST
from tornado_ingest.request import (
    declared_length,
)
from tornado_ingest.service import Service
from tornado_ingest.tornado_compat import close_after_answer
from tornado_ingest.tracing import REQUEST_ID_HEADER, request_id_for

log = logging.getLogger(__name__)


@stream_request_body
class BaseHandler(RequestHandler):
    """JSON envelope for every answer; requests counted while in flight."""

    api_id = INGEST_API_ID
    allowed_methods: Tuple[str, ...] = ("GET",)

    def initialize(self, service: Service, management: bool = False) -> None:
        self.context = service.context  # taken once: a reload meanwhile does not change this request's config
        self.service = service
        self.management = management  # on the operator's listener (server.management_port)
        self.msgid: Optional[str] = None
        self.key_name: Optional[str] = None  # the API key's name, for the access log
        self.body_length: Optional[int] = None
        self.client_gone = False  # the connection closed before the answer: the access log says 499
        self.dataset_label = NOT_INGEST  # for the metrics: a configured dataset id, or a fixed stand-in
        self.dataset_id: Optional[str] = None  # for the access log: the dataset the path names
        self.body_bytes = 0  # as received (before gzip is undone)
        self.events: Optional[int] = None  # in the request, once it is read
        self.outcome = "OK"  # the answer's code: OK or the error's code
        self._counted = False

    def set_default_headers(self) -> None:
        """Also run again when an error answer is built: what is set here is on every answer."""
        self.set_header("Content-Type", "application/json; charset=utf-8")
        if not hasattr(self, "request_id"):  # the first call comes from Tornado's constructor, before initialize
            self.request_id = request_id_for(self.request.headers)
        self.set_header(REQUEST_ID_HEADER, self.request_id)

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
        self.outcome = error.code
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
            return  # the sink logs its change of state once; the access line has each request
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
