"""Stopping without losing an answer: requests in flight are counted, finished, then the sinks close.

The whole drain lives here: the count the handlers keep, ``Connection: close``
on answers given while draining (so kept-alive clients move elsewhere instead
of holding the drain open), ``/ready`` turning 503, and the shutdown sequence.
With ``server.shutdown_delay`` the listener stays open that long after
``/ready`` turned 503, so that a load balancer stops sending new connections
before they would be refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, Optional

import tornado.httpserver
from tornado.httputil import HTTPServerRequest

from tornado_ingest.tornado_compat import close_after_answer

log = logging.getLogger(__name__)


class Drain:
    def __init__(self) -> None:
        self.open_requests = 0
        self.draining = False  # /ready answers 503 from the moment this turns True
        self.over = False  # the drain is done: what still unwinds was cut off and is counted, not logged
        self._idle: Optional[asyncio.Event] = None

    def request_started(self, request: HTTPServerRequest) -> None:
        self.open_requests += 1
        if self.draining:
            close_after_answer(request)

    def request_finished(self) -> None:
        self.open_requests -= 1
        if self.open_requests == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in flight; False if ``timeout`` ran out first."""
        if self.open_requests == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self._idle = None

    async def run(
        self,
        server: tornado.httpserver.HTTPServer,
        close_sinks: Callable[[], Awaitable[None]],
        timeout: float,
        delay: float = 0.0,
    ) -> None:
        """``/ready`` 503, serve ``delay`` seconds more, stop accepting, let requests in flight finish (up to
        ``timeout``), close the sinks; say how it went."""
        self.draining = True
        if delay > 0:
            log.info("/ready answers 503; the listener closes in %gs (server.shutdown_delay)", delay)
            await asyncio.sleep(delay)
        server.stop()
        in_flight = self.open_requests
        cut = 0 if await self.wait_idle(timeout) else self.open_requests
        await server.close_all_connections()
        self.over = True  # the requests cut off are counted below, not logged one by one as they unwind
        if cut:
            asyncio.get_running_loop().set_exception_handler(_quiet_about_cancelled)
        await close_sinks()
        if cut:
            log.warning(
                "stopped: %d of %d requests in flight cut off by drain_timeout (%gs); sinks closed; bye",
                cut,
                in_flight,
                timeout,
            )
        else:
            log.info("stopped: %d requests in flight finished; sinks closed; bye", in_flight)


def _quiet_about_cancelled(loop: asyncio.AbstractEventLoop, context: Dict[str, Any]) -> None:
    """The loop's error handler once a drain was cut: the cut requests' handlers, cancelled as the loop ends,
    are not errors (Tornado's done-callback re-raises their CancelledError; Python 3.9 and 3.10 log it)."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)
