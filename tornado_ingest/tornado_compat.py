"""Every touch of Tornado's private attributes, in one place.

Tornado (6.2 to 6.6) has no public way to do these two things. Each is guarded
by ``tests/unit/compat/test_tornado.py``, which fails loudly on a Tornado that
no longer has what it relies on.
"""

from __future__ import annotations

from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler


def close_after_answer(request: HTTPServerRequest) -> None:
    """Answer this request with ``Connection: close`` and close the connection once the answer is out.

    ``HTTP1Connection`` decides keep-alive per request in ``_disconnect_on_finish``;
    setting it before the headers are written makes Tornado add the header too.
    """
    connection = request.connection
    if connection is not None:
        connection._disconnect_on_finish = True  # type: ignore[attr-defined]


def answer_finished(handler: RequestHandler) -> bool:
    """Whether ``handler`` has sent its whole answer (``finish`` ran, e.g. an early error)."""
    return bool(handler._finished)
