"""Run the service: bind, start the sinks, serve, and drain cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import tornado.httpserver
import tornado.netutil

from tornado_ingest import event_loop
from tornado_ingest.app import IngestApplication, make_app, make_management_app
from tornado_ingest.config import Config
from tornado_ingest.reload import Reloader
from tornado_ingest.settings import ServerSettings
from tornado_ingest.signals import OrphanWatch, StopSignals

log = logging.getLogger(__name__)

# The handlers enforce server.max_body_bytes themselves, with an enveloped 413;
# Tornado's own limit would answer a bare 400 and drop the connection first.
UNLIMITED_BODY = 1 << 62


@dataclass
class Listeners:
    """The sockets bound before any worker is forked: where ingest is served, and the operator's listener."""

    ingest: List[socket.socket]
    management: List[socket.socket] = field(default_factory=list)


def bind(config: Config) -> Optional[Listeners]:
    """Bind the ingest port, and the management port when one is set; None (and one log line) if one cannot be."""
    server = config.server
    wanted = [(server.port, server.address)]
    if server.management_port is not None:
        wanted.append((server.management_port, server.management_address or server.address))
    bound = []
    for port, address in wanted:
        try:
            bound.append(tornado.netutil.bind_sockets(port, address))
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", address, port, exc.strerror or exc)
            return None
    return Listeners(*bound)


def _ports(sockets: List[socket.socket]) -> str:
    return ", ".join(map(str, sorted({sock.getsockname()[1] for sock in sockets})))


def run_service(config: Config, load: Optional[Callable[[], Config]] = None) -> int:
    """Bind, then serve in this process or in ``server.processes`` forked workers; ``load`` reads the config
    again (with the command line's flags) when SIGHUP asks for a reload."""
    listeners = bind(config)
    if listeners is None:
        return 1
    processes = config.server.processes or os.cpu_count() or 1
    loop = config.server.event_loop
    log.info(
        "listening on %s port %s (config: %s, %d process%s, event loop: %s)",
        config.server.address,
        _ports(listeners.ingest),
        config.source,
        processes,
        "es" if processes > 1 else "",
        event_loop.describe(loop),
    )
    if listeners.management:
        address = config.server.management_address or config.server.address
        log.info("management listener on %s port %s", address, _ports(listeners.management))
    if processes == 1:
        return event_loop.run(serve(config, listeners, load=load), loop)
    from tornado_ingest.workers import supervise

    supervisor = os.getpid()
    return supervise(
        processes, lambda: event_loop.run(serve(config, listeners, supervisor=supervisor, load=load), loop)
    )


def _http_server(app: IngestApplication, settings: ServerSettings) -> tornado.httpserver.HTTPServer:
    return tornado.httpserver.HTTPServer(
        app,
        max_body_size=UNLIMITED_BODY,
        decompress_request=False,
        idle_connection_timeout=settings.idle_timeout,  # also bounds the wait for a request's head
        # No body_timeout here: Tornado would arm a timer per request; BodyDeadlines
        # enforces server.body_timeout with one sweep a second instead.
    )


async def serve(
    config: Config,
    listeners: Listeners,
    supervisor: Optional[int] = None,
    load: Optional[Callable[[], Config]] = None,
) -> int:
    """Start the sinks, serve on bound sockets until a stop signal, then drain; returns the exit status.

    A stop signal while the sinks start stops the start-up there. A worker
    (``supervisor`` is its supervisor's pid) stops too when its supervisor is
    gone, whatever took it: workers never serve on as orphans. The management
    listener answers until the sinks are closed (a load balancer probing its
    /ready sees the drain).
    """
    stopping = asyncio.Event()
    app = make_app(config)
    app.service.manages_heap = True
    reloader = Reloader(app.service, load or (lambda: config))
    with StopSignals(stopping, reloader.reload_soon), OrphanWatch(supervisor, stopping):
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
        server = _http_server(app, config.server)
        server.add_sockets(listeners.ingest)
        management = None
        if listeners.management:
            management = _http_server(make_management_app(app.service), config.server)
            management.add_sockets(listeners.management)
        await stopping.wait()
        await app.context.drain.run(server, app.close, config.server.drain_timeout, config.server.shutdown_delay)
        if management is not None:
            management.stop()
            await management.close_all_connections()
    return 0
