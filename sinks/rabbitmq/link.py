"""One connection to one node and its confirming channel: opened, set up, and reporting what happens to it.

The connection keeper may hold more than one at a time: the one in use, one
being opened to return to the first node, one retiring once its last confirms
are in. Each ``Link`` reports its own loss and blocking to a ``LinkListener``,
so that an event on one is never taken for an event on another.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Awaitable, Callable, Optional

from sinks.handoff import settle
from sinks.rabbitmq.compat import BatchingConnection
from sinks.rabbitmq.errors import ConnectionLost, describe
from sinks.rabbitmq.nodes import Node
from sinks.rabbitmq.topology import RunOperation

#: prepares a fresh channel before anything is published on it (confirm mode, topology)
ChannelSetup = Callable[[Any, RunOperation], Awaitable[None]]


class LinkListener:
    """What a ``Link`` tells its keeper; every call runs on the loop."""

    def link_lost(self, link: "Link", why: str) -> None:
        raise NotImplementedError

    def link_blocked(self, link: "Link") -> None:
        raise NotImplementedError

    def link_unblocked(self, link: "Link") -> None:
        raise NotImplementedError


class Link:
    """A connection to ``node`` and, once ``open`` returned, its channel in confirm mode with the topology declared."""

    def __init__(self, node: Node, listener: LinkListener) -> None:
        self.node = node
        self.listener = listener
        self.lost: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self.why: Optional[str] = None  # why it was lost
        self.blocked: Optional[str] = None  # the broker's reason while it blocks publishing
        self.connection: Any = None
        self.channel: Any = None

    async def open(self, setup_channel: ChannelSetup) -> None:
        """Connect, open the channel and set it up; raise if any step fails or the connection goes meanwhile."""
        opened: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        self.connection = BatchingConnection(
            self.node.parameters,
            on_open_callback=lambda connection: settle(opened, result=connection),
            on_open_error_callback=lambda _, error: settle(opened, _as_exception(error)),
            on_close_callback=self._connection_closed,
            custom_ioloop=asyncio.get_running_loop(),
        )
        connection = await opened
        connection.add_on_connection_blocked_callback(self._blocked)
        connection.add_on_connection_unblocked_callback(self._unblocked)
        self.channel = channel = await self._until_lost(lambda done: connection.channel(on_open_callback=done))
        channel.add_on_close_callback(self._channel_closed)
        await setup_channel(channel, self.run)

    def run(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Call pika's asynchronous ``method`` and return what its callback got (see ``RunOperation``)."""
        return self._until_lost(lambda done: method(*args, callback=done, **kwargs))

    def give_up(self, why: str) -> None:
        """Count the link as lost (``why``) and drop its connection without waiting for a goodbye."""
        self._gone(why)
        self.close()

    def close(self) -> None:
        connection = self.connection
        if connection is not None and not (connection.is_closing or connection.is_closed):
            with contextlib.suppress(Exception):  # pika refuses in some opening or closing states: it goes anyway
                connection.close()

    async def goodbye(self, timeout: float) -> bool:
        """Close the connection politely and wait up to ``timeout`` for the broker's answer; False if not open."""
        connection = self.connection
        if connection is None or connection.is_closed:
            return False
        if not connection.is_open and not connection.is_closing:  # still opening: abort it
            self.close()
            return False
        if not connection.is_closing:
            connection.close()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self.lost), timeout)
        return True

    async def _until_lost(self, start: Callable[[Callable[..., None]], None]) -> Any:
        """Start one asynchronous pika operation and return what its callback got; fail if the connection goes."""
        done: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        start(lambda result=None, *_: settle(done, result=result))
        await asyncio.wait([done, self.lost], return_when=asyncio.FIRST_COMPLETED)
        if done.done():
            return done.result()
        raise ConnectionLost(self.why or "connection lost")

    def _connection_closed(self, connection: Any, reason: BaseException) -> None:
        self._gone("connection to %s lost: %s" % (self.node.redacted_url, describe(reason)))

    def _channel_closed(self, channel: Any, reason: BaseException) -> None:
        connection = self.connection
        if connection is None or connection.is_closing or connection.is_closed:
            self._gone("connection to %s lost: %s" % (self.node.redacted_url, describe(reason)))
        else:
            self._gone("channel closed: %s" % describe(reason))
        self.close()  # start again from a fresh connection

    def _gone(self, why: str) -> None:
        if self.why is not None:
            return
        self.why = why
        settle(self.lost)
        self.listener.link_lost(self, why)

    def _blocked(self, connection: Any, frame: Any) -> None:
        self.blocked = getattr(frame.method, "reason", None) or "resource alarm"
        self.listener.link_blocked(self)

    def _unblocked(self, connection: Any, frame: Any) -> None:
        self.blocked = None
        self.listener.link_unblocked(self)


async def silence_or_loss(connection: Any, lost: "asyncio.Future[None]", heartbeat: float) -> Optional[float]:
    """Wait for the connection's loss (None), or until it has been silent for two heartbeats (for how long).

    pika's own check waits up to twice (heartbeat + 5) seconds, and a frozen
    broker would look up all that time; the broker sends a heartbeat every half
    heartbeat, so two heartbeats of silence mean it is gone.
    """
    if not heartbeat or connection is None:
        await lost
        return None
    loop = asyncio.get_running_loop()
    received, heard_at = connection.bytes_received, loop.time()
    while not lost.done():
        await asyncio.wait([lost], timeout=heartbeat / 2)
        if connection.bytes_received != received:
            received, heard_at = connection.bytes_received, loop.time()
        elif loop.time() - heard_at >= 2 * heartbeat and not lost.done():
            return loop.time() - heard_at
    return None


def _as_exception(error: Any) -> BaseException:
    return error if isinstance(error, BaseException) else Exception(str(error))
