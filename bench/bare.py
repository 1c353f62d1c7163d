"""The ceiling: a bare Tornado handler that parses the body and answers the success envelope.

No validation, no record, no sink, no logging: whatever the service does beyond
this is its overhead, so every figure is also shown as a ratio to this one.

    python -m bench.bare --port N [--address A] [--processes N] [--json auto|json|orjson]
                         [--event-loop asyncio|uvloop]

It stops on SIGTERM, and also when its stdin closes (the bench died), so it
never outlives the run that started it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import signal
import sys
import threading
import time
import uuid
from typing import Any, Callable, Coroutine, List, Tuple

import tornado.httpserver
import tornado.netutil
import tornado.web


def codec(name: str) -> Tuple[str, Callable[[bytes], Any], Callable[[Any], bytes]]:
    """The JSON library to parse and answer with: orjson when asked (or ``auto`` and installed)."""
    if name in ("auto", "orjson"):
        try:
            import orjson

            return "orjson", orjson.loads, orjson.dumps
        except ImportError:
            if name == "orjson":
                raise
    return "json", json.loads, lambda value: json.dumps(value, separators=(",", ":")).encode()


_clock = {"second": -1, "text": ""}


def local_timestamp() -> str:
    second = int(time.time())
    if _clock["second"] != second:
        _clock["second"] = second
        _clock["text"] = datetime.datetime.fromtimestamp(second).astimezone().isoformat()
    return _clock["text"]


class IngestHandler(tornado.web.RequestHandler):
    loads: Callable[[bytes], Any] = staticmethod(json.loads)
    dumps: Callable[[Any], bytes] = staticmethod(json.dumps)

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")

    def post(self, dataset_id: str) -> None:
        document = self.loads(self.request.body)
        envelope = {
            "id": "api.data.in",
            "ver": "v2",
            "ts": local_timestamp(),
            "params": {"status": "SUCCESS", "msgid": document["params"]["msgid"], "resmsgid": str(uuid.uuid4())},
            "responseCode": "OK",
            "result": {"message": "Data ingested successfully"},
        }
        self.finish(self.dumps(envelope))


class ReadyHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish({"status": "ready"})


def make_app(json_name: str) -> tornado.web.Application:
    _, loads, dumps = codec(json_name)
    IngestHandler.loads = staticmethod(loads)
    IngestHandler.dumps = staticmethod(dumps)
    return tornado.web.Application([(r"/v2/data/in/([^/]+)", IngestHandler), (r"/ready", ReadyHandler)])


async def serve(sockets: List, json_name: str) -> None:
    server = tornado.httpserver.HTTPServer(make_app(json_name))
    server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.stop()


def run(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run ``main`` on the plain asyncio loop or on uvloop (as the service's ``--event-loop`` does)."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def exit_on_stdin_eof(children: List[int]) -> None:
    def watch() -> None:
        try:
            sys.stdin.buffer.read()
        except (OSError, ValueError):
            return
        for pid in children:
            _kill(pid)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--json", default="auto", choices=["auto", "json", "orjson"])
    parser.add_argument("--event-loop", default="asyncio", choices=["asyncio", "uvloop"])
    args = parser.parse_args()
    sockets = tornado.netutil.bind_sockets(args.port, args.address)
    if args.processes <= 1:
        exit_on_stdin_eof([])
        run(serve(sockets, args.json), args.event_loop)
        return 0
    children: List[int] = []
    for _ in range(args.processes):
        pid = os.fork()
        if pid == 0:
            run(serve(sockets, args.json), args.event_loop)
            os._exit(0)
        children.append(pid)
    exit_on_stdin_eof(children)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: [_kill(pid) for pid in children])
    for pid in children:
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
