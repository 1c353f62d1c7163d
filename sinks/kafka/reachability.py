"""Can the bootstrap servers be reached at all? A TCP dial, to say why Kafka does not answer.

kafka-python keeps its connection errors to itself (it logs them and tries
again); when a metadata request goes unanswered, a plain dial tells a refused
or unroutable address from a broker that is there but silent. It blocks up to
``timeout`` per server: the producer thread calls it, never the loop.
"""

from __future__ import annotations

import socket
from typing import Optional, Sequence

from sinks.base import describe_error


def host_and_port(server: str) -> tuple:
    """``"host:port"`` (a ``scheme://`` or ``user@`` before it is dropped) -> ``(host, port)``."""
    address = server.rpartition("://")[2].rpartition("@")[2]
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def unreachable_reason(servers: Sequence[str], timeout: float) -> Optional[str]:
    """None when some server takes a TCP connection; else why none does, server by server."""
    reasons = []
    for server in servers:
        try:
            host, port = host_and_port(server)
            socket.create_connection((host, port), timeout=timeout).close()
            return None
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else describe_error(exc)
            reasons.append("%s: %s" % (server.rpartition("@")[2], why))
    return "; ".join(reasons)
