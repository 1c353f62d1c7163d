"""The access line: one per answered request, with nothing secret in it."""

from __future__ import annotations

import logging

import tornado.web
from tornado.httputil import HTTPServerRequest

from tornado_ingest.context import Context
from tornado_ingest.logs import client_address
from tornado_ingest.metrics import NOT_INGEST

ACCESS_LOG = logging.getLogger("tornado.access")
#: the status logged when the client closed its connection before its answer (nginx's number for it)
CLIENT_GONE = 499


def request_done(handler: tornado.web.RequestHandler) -> None:
    """Tornado's log function: count the request in the metrics, then write its access line."""
    context = getattr(handler, "context", None)
    if not isinstance(context, Context):
        return
    if context.drain.over:
        return  # cut off by the drain's timeout: the drain's last line counts it
    # 499 (as nginx says it): the client closed its connection first, no answer reached it
    gone = getattr(handler, "client_gone", False)
    status = CLIENT_GONE if gone else handler.get_status()
    request = handler.request
    seconds = request.request_time()
    context.metrics.request_answered(
        getattr(handler, "dataset_label", NOT_INGEST),
        "CLIENT_GONE" if gone else getattr(handler, "outcome", "OK"),
        status,
        seconds,
    )
    level = level_for(status)
    if ACCESS_LOG.isEnabledFor(level):
        path = path_for_log(request)
        fields = {
            "method": request.method,
            "path": path,
            "status": status,
            "dataset": getattr(handler, "dataset_id", None),
            "msgid": getattr(handler, "msgid", None),
            "request_id": getattr(handler, "request_id", None),
            "key": getattr(handler, "key_name", None),
            "bytes": getattr(handler, "body_bytes", None) or None,
            "events": getattr(handler, "events", None),
            "duration_ms": round(1000.0 * seconds, 2),
            "remote": client_address(request, context.trusted_proxies),
        }
        line = "%d %s %s (%s) %.2fms"
        ms = fields["duration_ms"]
        ACCESS_LOG.log(level, line, status, request.method, path, fields["remote"], ms, extra={"access": fields})


def level_for(status: int) -> int:
    """An error of ours is an ERROR; a client's, a WARNING. A 503 is INFO: the sink logs its outage once, as it
    begins and ends, not once per request refused meanwhile (nor per readiness probe)."""
    if status >= 500 and status != 503:
        return logging.ERROR
    if 400 <= status < 500 and status != CLIENT_GONE:
        return logging.WARNING
    return logging.INFO


def path_for_log(request: HTTPServerRequest) -> str:
    """``/path?name=***&other=***``: the query's names, never its values."""
    if not request.query:
        return request.path
    names = [part.partition("=")[0] for part in request.query.split("&") if part]
    return "%s?%s" % (request.path, "&".join("%s=***" % name for name in names))
