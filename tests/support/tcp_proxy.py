"""A small TCP proxy for tests: put it between the service and a broker, then cut and restore.

``cut()`` drops every live connection and refuses new ones; ``restore()``
listens again on the same port. ``freeze()`` holds every byte in both
directions without closing anything (a broker that stopped answering), until
``thaw()``. ``hold_toward_target_after(n)`` lets ``n`` more bytes reach the
target, then holds what the client sends while the target's answers still
come back (a link that failed half-way through a burst). It runs in its own
threads, so it behaves like a remote network path whatever the test's event
loop is doing.
"""

from __future__ import annotations

import socket
import threading
from typing import List, Optional, Tuple


class TcpProxy:
    def __init__(self, target: Tuple[str, int], host: str = "127.0.0.1", port: int = 0):
        self.target = target
        self.host = host
        self.port = port
        self._listener: Optional[socket.socket] = None
        self._connections: List[socket.socket] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._budget: Optional[int] = None  # bytes still let through toward the target; None: no limit

    @property
    def address(self) -> str:
        return "%s:%d" % (self.host, self.port)

    def start(self) -> "TcpProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy-accept").start()
        return self

    def cut(self) -> None:
        """Drop every connection and stop accepting: the broker looks gone."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            _close(conn)
        self._flowing.set()  # let frozen pumps see their sockets closed

    def freeze(self) -> None:
        """Hold all traffic, closing nothing: what confirm and send timeouts are for."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def hold_toward_target_after(self, count: int) -> None:
        """Let ``count`` more bytes through toward the target, then hold the rest (answers still flow back)."""
        with self._lock:
            self._budget = count

    def restore(self) -> None:
        """Accept again, on the same port, every byte let through."""
        self._budget = None
        if self._listener is None:
            self.start()

    close = cut

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(upstream)
                    return
                self._connections += [client, upstream]
            for source, sink, toward_target in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, toward_target), daemon=True, name="proxy-pump"
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, toward_target: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                if toward_target:
                    data = self._within_budget(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)

    def _within_budget(self, data: bytes) -> bytes:
        with self._lock:
            if self._budget is None:
                return data
            allowed, self._budget = data[: self._budget], max(0, self._budget - len(data))
        return allowed


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
