"""The broker nodes a sink may connect to: which one to try next, how long to wait, when to go back to the first.

``url`` may list several nodes of one cluster. The first is preferred. A lost
connection or a failed attempt moves on to the next node (wrapping round); the
backoff waits only once a whole round of attempts has failed, so a dead node
costs one failed attempt, not a backoff. Once connected to another node, the
sink returns to the first ``failback_after`` seconds later, as soon as the first
node takes a TCP connection (looked at every ``FAILBACK_PROBE_INTERVAL``
seconds); the connection keeper makes that switch without failing a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import urllib.parse
from dataclasses import dataclass
from typing import Any, List, Sequence, Tuple

#: seconds between two looks at whether the first node is back, once ``failback_after`` has passed
FAILBACK_PROBE_INTERVAL = 5.0


@dataclass(frozen=True)
class Node:
    """One node: pika's parameters for it, its URL as logs and ``/health`` show it, and its TCP address."""

    parameters: Any
    redacted_url: str
    address: Tuple[str, int]


def node_address(url: str) -> Tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "localhost", parts.port or (5671 if parts.scheme == "amqps" else 5672)


class NodeList:
    """The nodes in their order of preference, and the one in use (or to try next)."""

    def __init__(self, nodes: Sequence[Node], failback_after: float) -> None:
        if not nodes:
            raise ValueError("at least one node")
        self.nodes: List[Node] = list(nodes)
        self.failback_after = failback_after
        self.index = 0
        self._round_start = 0  # the node this round of attempts began with

    @property
    def current(self) -> Node:
        return self.nodes[self.index]

    @property
    def first(self) -> Node:
        return self.nodes[0]

    @property
    def on_first(self) -> bool:
        return self.index == 0

    def attempt_failed(self) -> bool:
        """The attempt on the current node failed: move to the next; True when a whole round has failed."""
        self.index = (self.index + 1) % len(self.nodes)
        return self.index == self._round_start

    def connected(self, node: Node) -> None:
        """Connected to ``node``: the next loss starts a fresh round from the node after it."""
        self.index = self._round_start = self.nodes.index(node)

    def lost(self) -> None:
        """The connection in use is gone: try the next node first."""
        self.index = self._round_start = (self.index + 1) % len(self.nodes)

    async def failback_due(self, connect_timeout: float) -> None:
        """Return once it is time to go back to the first node: ``failback_after`` passed, and it takes TCP.

        Never returns while on the first node, nor with ``failback_after`` 0.
        """
        if self.on_first or not self.failback_after:
            await asyncio.Event().wait()  # forever (cancelled by the caller)
        await asyncio.sleep(self.failback_after)
        while not await takes_connections(self.first.address, connect_timeout):
            await asyncio.sleep(FAILBACK_PROBE_INTERVAL)


async def takes_connections(address: Tuple[str, int], timeout: float) -> bool:
    """Whether a TCP connection to ``address`` opens within ``timeout``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class Backoff:
    """The waits between failed rounds of connection attempts: doubling from ``first`` up to ``cap``, with jitter."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = max(cap, first)
        self._next = first

    def reset(self) -> None:
        """After a successful connect: the next failure waits ``first`` again."""
        self._next = self.first

    def next_delay(self) -> float:
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(max(self._next * 2, 0.1), self.cap)
        return delay
