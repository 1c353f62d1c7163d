"""``server.body_timeout``: a request body must arrive in time, or its connection is closed.

One sweep a second looks for late bodies, instead of a Tornado timer per request.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

import tornado.ioloop
from tornado.http1connection import HTTP1Connection
from tornado.web import RequestHandler

from tornado_ingest.settings import ServerSettings

log = logging.getLogger(__name__)

SWEEP_MS = 1000


class BodyDeadlines:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.waiting: Dict[RequestHandler, float] = {}  # handler -> loop time its body must have arrived by
        self._sweeper: Optional[tornado.ioloop.PeriodicCallback] = None

    def expect(self, handler: RequestHandler) -> None:
        self.waiting[handler] = tornado.ioloop.IOLoop.current().time() + self.settings.body_timeout

    def arrived(self, handler: RequestHandler) -> None:
        self.waiting.pop(handler, None)

    def sweep(self) -> None:
        """Close the connections whose request body is late."""
        if not self.waiting:
            return
        now = tornado.ioloop.IOLoop.current().time()
        for handler, deadline in list(self.waiting.items()):
            if deadline <= now:
                del self.waiting[handler]
                log.info(
                    "closing %s: request body not complete after %ss",
                    handler.request.remote_ip,
                    self.settings.body_timeout,
                )
                connection = handler.request.connection
                if isinstance(connection, HTTP1Connection):  # the request's declared type has no close()
                    connection.close()

    def start(self) -> None:
        self._sweeper = tornado.ioloop.PeriodicCallback(self.sweep, SWEEP_MS)
        self._sweeper.start()

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
