"""Count what one request costs, instead of timing it: Python bytecodes per request, by module.

    python -m bench.count [--server bare|service] [--payload single|batch] [--sink memory|file]
                          [--requests N] [--top N] [--quiet]

One connection, requests one after another through a real socket to the server,
which runs in this same process (so does the client, whose share is the same
for every server). Counting is as repeatable as the code: on a machine whose
timings wander by a fifth from one run to the next, a change of 1 % still
shows. It says where the bytecodes go, not how long each takes: C work (the
JSON parse, a syscall) is one bytecode here. For machine instructions, C work
included, count the same process with valgrind, once with ``--requests 0`` and
once with N, and divide the difference by N::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.count --quiet --requests 400

(bench/WHY.md has the figures of both.)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import os
import sys
import tempfile
import threading
from types import CodeType, FrameType
from typing import Any, Counter, Optional

import tornado.httpserver
import tornado.netutil

from bench import payloads

WARM_UP = 50  # requests before counting starts: imports, first-use caches
PREFIXES = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,) + tuple(
    sorted({os.path.dirname(os.__file__) + os.sep, os.path.dirname(os.path.dirname(tornado.__file__)) + os.sep})
)


class OpcodeCounter:
    """Bytecodes executed while ``counting``, by (file, function), in every thread.

    Python 3.12 and later: ``sys.monitoring`` instruction events (3.12.1's ``sys.settrace`` turns opcode events
    on only from its second call); earlier: ``sys.settrace`` opcode events.
    """

    TOOL = 5  # a sys.monitoring tool id left free by debuggers, coverage and profilers (0-2)

    def __init__(self) -> None:
        self.counts: Counter[Any] = collections.Counter()
        self.counting = False
        self._monitoring: Any = getattr(sys, "monitoring", None)

    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode" and self.counting:
            code = frame.f_code
            self.counts[(code.co_filename, code.co_name)] += 1
        return self.trace

    def instruction(self, code: CodeType, offset: int) -> None:
        if self.counting:
            self.counts[(code.co_filename, code.co_name)] += 1

    def install(self) -> None:
        monitoring = self._monitoring
        if monitoring is not None:
            monitoring.use_tool_id(self.TOOL, "bench.count")
            monitoring.register_callback(self.TOOL, monitoring.events.INSTRUCTION, self.instruction)
            monitoring.set_events(self.TOOL, monitoring.events.INSTRUCTION)
        else:
            sys.settrace(self.trace)
            threading.settrace(self.trace)

    def remove(self) -> None:
        monitoring = self._monitoring
        if monitoring is not None:
            monitoring.set_events(self.TOOL, 0)
            monitoring.register_callback(self.TOOL, monitoring.events.INSTRUCTION, None)
            monitoring.free_tool_id(self.TOOL)
        else:
            sys.settrace(None)
            threading.settrace(None)  # type: ignore[arg-type]


def short(path: str) -> str:
    for prefix in PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def request_bytes(body: bytes) -> bytes:
    head = "POST /v2/data/in/bench HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


async def start_server(server: str, sink: str, directory: str) -> Any:
    """The bare handler, or the service with one dataset on a memory or file sink (in ``directory``); returns
    its app and port."""
    if server == "bare":
        from bench import bare

        app: Any = bare.make_app("orjson")
        http = tornado.httpserver.HTTPServer(app)
    else:
        from tornado_ingest.app import make_app
        from tornado_ingest.config import parse_config
        from tornado_ingest.server import _http_server

        options = {"type": "memory"} if sink == "memory" else {"type": "file", "directory": directory}
        config = parse_config({"sinks": {"s": options}, "datasets": {"bench": {"sink": "s", "entry_topic": "t"}}})
        app = make_app(config)
        await app.start()
        http = _http_server(app, config.server)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    http.add_sockets(sockets)
    return app, sockets[0].getsockname()[1]


async def drive(args: argparse.Namespace, counter: Optional[OpcodeCounter], directory: str) -> None:
    app, port = await start_server(args.server, args.sink, directory)
    request = request_bytes(payloads.body(payloads.EVENTS[args.payload]))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def one() -> None:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        answer = await reader.readexactly(length)
        if b'"SUCCESS"' not in answer:
            raise SystemExit("not a success: %r" % answer[:300])

    for _ in range(WARM_UP):
        await one()
    if counter is not None:
        counter.counting = True
    for _ in range(args.requests):
        await one()
    if counter is not None:
        counter.counting = False
    writer.close()
    if args.server == "service":
        await app.close()


def report(counter: OpcodeCounter, args: argparse.Namespace) -> None:
    per = float(max(args.requests, 1))
    by_module: Counter[str] = collections.Counter()
    for (path, _), count in counter.counts.items():
        by_module[short(path)] += count
    where = "the bare handler" if args.server == "bare" else "the service, %s sink" % args.sink
    total = sum(counter.counts.values()) / per
    print("%s, %s: %.0f bytecodes per request (%d requests)" % (where, args.payload, total, args.requests))
    print("\nby module:")
    for module, count in by_module.most_common(args.top):
        print("  %8.0f  %s" % (count / per, module))
    print("\nby function:")
    for (path, name), count in counter.counts.most_common(args.top):
        print("  %8.0f  %s:%s" % (count / per, short(path), name))


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.count", description=__doc__.split("\n")[0])
    parser.add_argument("--server", choices=("bare", "service"), default="service")
    parser.add_argument("--payload", choices=tuple(payloads.EVENTS), default="single")
    parser.add_argument("--sink", choices=("memory", "file"), default="memory", help="the service's sink")
    parser.add_argument("--requests", type=int, default=200, help="requests counted, after %d of warm-up" % WARM_UP)
    parser.add_argument("--top", type=int, default=30, help="lines per list")
    parser.add_argument("--quiet", action="store_true", help="no counting, no report: for valgrind's count")
    args = parser.parse_args(argv)
    service_log = logging.getLogger("tornado_ingest")
    level = service_log.level
    service_log.setLevel(logging.ERROR)  # its start-up advice is not a figure; set back after, for a caller's sake
    counter = None if args.quiet else OpcodeCounter()
    try:
        if counter is not None:
            counter.install()
        with tempfile.TemporaryDirectory(prefix="bench-count-") as directory:
            asyncio.run(drive(args, counter, directory))
    finally:
        if counter is not None:
            counter.remove()
        service_log.setLevel(level)
    if counter is not None:
        report(counter, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
