"""Run the service: bind, start the sinks, serve, and drain cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import List

import tornado.httpserver
import tornado.netutil

from tornado_ingest.app import make_app
from tornado_ingest.config import Config

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

    return supervise(processes, lambda: asyncio.run(serve(config, sockets)))


async def serve(config: Config, sockets: List[socket.socket]) -> int:
    """Serve on bound sockets until a stop signal, then drain; returns the exit status."""
    app = make_app(config)
    await app.start()
    server = tornado.httpserver.HTTPServer(
        app,
        max_body_size=UNLIMITED_BODY,
        decompress_request=False,
        idle_connection_timeout=config.server.idle_timeout,  # also bounds the wait for a request's head
        # No body_timeout here: Tornado would arm a timer per request; BodyDeadlines
        # enforces server.body_timeout with one sweep a second instead.
    )
    server.add_sockets(sockets)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stop_on_signal, signum, stopping)
    try:
        await stopping.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    await app.context.drain.run(server, app.close, config.server.drain_timeout)
    return 0


def _stop_on_signal(signum: int, stopping: asyncio.Event) -> None:
    log.info("%s received: stopping", signal.Signals(signum).name)
    stopping.set()
