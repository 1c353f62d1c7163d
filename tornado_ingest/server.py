"""Run the service: bind, start the sinks, serve, and drain cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import List, Optional

import tornado.httpserver
import tornado.netutil

from tornado_ingest.app import make_app
from tornado_ingest.config import Config
from tornado_ingest.signals import OrphanWatch, StopSignals

log = logging.getLogger(__name__)

# The handlers enforce server.max_body_bytes themselves, with an enveloped 413;
# Tornado's own limit would answer a bare 400 and drop the connection first.
UNLIMITED_BODY = 1 << 62


def run_service(config: Config) -> int:
    """Bind, then serve in this process or in ``server.processes`` forked workers."""
    try:
        sockets = tornado.netutil.bind_sockets(config.server.port, config.server.address)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.server.address, config.server.port, exc.strerror or exc)
        return 1
    processes = config.server.processes or os.cpu_count() or 1
    ports = sorted({sock.getsockname()[1] for sock in sockets})
    log.info(
        "listening on %s port %s (config: %s, %d process%s)",
        config.server.address,
        ", ".join(map(str, ports)),
        config.source,
        processes,
        "es" if processes > 1 else "",
    )
    if processes == 1:
        return asyncio.run(serve(config, sockets))
    from tornado_ingest.workers import supervise

    supervisor = os.getpid()
    return supervise(processes, lambda: asyncio.run(serve(config, sockets, supervisor=supervisor)))


async def serve(config: Config, sockets: List[socket.socket], supervisor: Optional[int] = None) -> int:
    """Start the sinks, serve on bound sockets until a stop signal, then drain; returns the exit status.

    A stop signal while the sinks start stops the start-up there. A worker
    (``supervisor`` is its supervisor's pid) stops too when its supervisor is
    gone, whatever took it: workers never serve on as orphans.
    """
    stopping = asyncio.Event()
    with StopSignals(stopping), OrphanWatch(supervisor, stopping):
        app = make_app(config)
        starting = asyncio.ensure_future(app.start())
        await asyncio.wait([starting, asyncio.ensure_future(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await app.close()
            log.info("stopped while the sinks were starting; sinks closed; bye")
            return 0
        starting.result()
        server = tornado.httpserver.HTTPServer(
            app,
            max_body_size=UNLIMITED_BODY,
            decompress_request=False,
            idle_connection_timeout=config.server.idle_timeout,  # also bounds the wait for a request's head
            # No body_timeout here: Tornado would arm a timer per request; BodyDeadlines
            # enforces server.body_timeout with one sweep a second instead.
        )
        server.add_sockets(sockets)
        await stopping.wait()
        await app.context.drain.run(server, app.close, config.server.drain_timeout, config.server.shutdown_delay)
    return 0
