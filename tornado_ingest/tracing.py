"""A request's id and its W3C trace context: taken from the client when sane, carried into the broker messages.

``X-Request-ID`` is echoed on every answer; one that is missing, too long or
holds other characters than a safe few is replaced by a new one. ``traceparent``
and ``tracestate`` (https://www.w3.org/TR/trace-context/) pass through when
``traceparent`` is well formed; they are dropped otherwise, never "fixed".
"""

from __future__ import annotations

import os
import re
from typing import List, Tuple

from tornado.httputil import HTTPHeaders

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_NOT_TRACEPARENT = ("ff",)  # version ff is invalid
MAX_TRACESTATE = 512


def request_id_for(headers: HTTPHeaders) -> str:
    """The client's ``X-Request-ID`` when it is sane, else a new one (32 hex digits)."""
    given = headers.get(REQUEST_ID_HEADER)
    if given is not None and _REQUEST_ID.match(given):
        return given
    return os.urandom(16).hex()  # 32 hex digits, as uuid4().hex, without building a UUID


def trace_context(request_id: str, headers: HTTPHeaders) -> Tuple[Tuple[str, str], ...]:
    """The headers a record carries to the broker: ``request_id``, and the trace context when it is well formed."""
    carried: List[Tuple[str, str]] = [("request_id", request_id)]
    parent = headers.get("traceparent", "").strip().lower()
    if _TRACEPARENT.match(parent) and parent[:2] not in _NOT_TRACEPARENT and "0" * 32 not in parent:
        carried.append(("traceparent", parent))
        state = headers.get("tracestate", "").strip()
        if state and len(state) <= MAX_TRACESTATE and state.isprintable() and state.isascii():
            carried.append(("tracestate", state))
    return tuple(carried)
