"""The access line: one per answered request, with nothing secret in it."""

from __future__ import annotations

import logging

import tornado.web
from tornado.httputil import HTTPServerRequest

from tornado_ingest.context import Context
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
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if ACCESS_LOG.isEnabledFor(level):
        key_name = getattr(handler, "key_name", None)
        ACCESS_LOG.log(
            level,
            "%d %s %s (%s) %.2fms%s",
            status,
            request.method,
            path_for_log(request),
            request.remote_ip,
            1000.0 * seconds,
            " key=%s" % key_name if key_name else "",
        )


def path_for_log(request: HTTPServerRequest) -> str:
    """``/path?name=***&other=***``: the query's names, never its values."""
    if not request.query:
        return request.path
    names = [part.partition("=")[0] for part in request.query.split("&") if part]
    return "%s?%s" % (request.path, "&".join("%s=***" % name for name in names))
