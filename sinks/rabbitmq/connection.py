"""One connection and one confirming channel to the broker, kept open: connect, notice loss and blocking, reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional

from sinks.handoff import settle
from sinks.health import HealthState
from sinks.rabbitmq.compat import BatchingConnection
from sinks.rabbitmq.errors import ConnectionLost, describe
from sinks.rabbitmq.topology import RunOperation

log = logging.getLogger(__name__)

CLOSING_REASON = "the sink is closing"
#: how long one attempt (TCP, TLS, AMQP handshake, channel, topology) may take, in connect timeouts
CONNECT_TIMEOUTS_PER_ATTEMPT = 2
#: how long a closing connection may take to say goodbye, in seconds
GOODBYE_TIMEOUT = 2.0

#: prepares a fresh channel before anything is published on it (confirm mode, topology)
ChannelSetup = Callable[[Any, RunOperation], Awaitable[None]]


class Backoff:
    """The waits between failed connection attempts: doubling from ``first`` up to ``cap``, with jitter."""

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


@dataclass(eq=False)
class ConnectionKeeper:
    """Keeps one connection and its channel open, and moves the sink's health on what happens to them.

    Up once the channel is ready and the broker does not block publishing; down
    with the reason otherwise, one warning line per new reason. A loss
    reconnects at once; a failed attempt waits its ``Backoff``; there is no
    attempt limit. ``on_down(reason)`` tells the sink its channel is gone.
    """

    sink_name: str
    parameters: Any  # pika's connection parameters
    redacted_url: str
    connect_timeout: float
    backoff: Backoff
    state: HealthState
    setup_channel: ChannelSetup
    on_down: Callable[[str], None]
    connection: Any = field(default=None, init=False)
    channel: Any = field(default=None, init=False)
    ready: bool = field(default=False, init=False)  # the channel is open, in confirm mode, the topology declared
    closing: bool = field(default=False, init=False)
    blocked: Optional[str] = field(default=None, init=False)  # the broker's reason while it blocks publishing
    connects: int = field(default=0, init=False)
    _lost: Optional["asyncio.Future[None]"] = field(default=None, init=False)  # resolved when the connection goes
    _runner: Optional["asyncio.Task[None]"] = field(default=None, init=False)

    async def start(self) -> None:
        """Start connecting; wait for the first attempt, at most ``connect_timeout``."""
        self.closing = False
        first_attempt = asyncio.Event()
        self._runner = asyncio.get_running_loop().create_task(self._keep_connected(first_attempt))
        try:
            await asyncio.wait_for(first_attempt.wait(), self.connect_timeout)
        except asyncio.TimeoutError:
            pass  # still connecting: the health says why, the runner keeps trying

    def begin_closing(self) -> None:
        """From now on a loss is not logged nor reconnected; the channel stays usable until ``stop``."""
        self.closing = True

    async def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        self.begin_closing()
        self.state.mark_down(CLOSING_REASON)
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    async def _keep_connected(self, first_attempt: asyncio.Event) -> None:
        try:
            while not self.closing:
                try:
                    lost = await asyncio.wait_for(self._connect(), self.connect_timeout * CONNECT_TIMEOUTS_PER_ATTEMPT)
                except Exception as exc:
                    if not isinstance(exc, ConnectionLost):  # else the reason is recorded already
                        self._went_down("cannot connect to %s: %s" % (self.redacted_url, describe(exc)))
                    self._drop_connection()
                else:
                    self.backoff.reset()
                    first_attempt.set()
                    await self._until_lost(lost)
                    continue  # reconnect at once after a loss; back off from the next failure
                finally:
                    first_attempt.set()
                await asyncio.sleep(self.backoff.next_delay())
        finally:
            await self._shutdown()

    async def _connect(self) -> "asyncio.Future[None]":
        """Open a connection and a ready channel; return the future its loss resolves."""
        loop = asyncio.get_running_loop()
        self._lost = lost = loop.create_future()
        opened: "asyncio.Future[Any]" = loop.create_future()
        self.connection = BatchingConnection(
            self.parameters,
            on_open_callback=lambda connection: settle(opened, result=connection),
            on_open_error_callback=lambda _, error: settle(opened, _as_exception(error)),
            on_close_callback=self._on_connection_closed,
            custom_ioloop=loop,
        )
        connection = await opened
        self.blocked = None
        connection.add_on_connection_blocked_callback(self._on_blocked)
        connection.add_on_connection_unblocked_callback(self._on_unblocked)

        def run(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
            return self._run_until_lost(lost, lambda done: method(*args, callback=done, **kwargs))

        self.channel = channel = await self._run_until_lost(
            lost, lambda done: connection.channel(on_open_callback=done)
        )
        channel.add_on_close_callback(self._on_channel_closed)
        await self.setup_channel(channel, run)
        self.connects += 1
        log.info(
            "rabbitmq sink %r: connected to %s (%s)",
            self.sink_name,
            self.redacted_url,
            "reconnect %d" % (self.connects - 1) if self.connects > 1 else "first connect",
        )
        if not lost.done():  # else it closed while we finished the handshake: that loss is recorded
            self.ready = True
            if self.blocked is None:
                self.state.mark_up()
        return lost

    async def _until_lost(self, lost: "asyncio.Future[None]") -> None:
        heartbeat = self.parameters.heartbeat or 0
        silent_for = await silence_or_loss(self.connection, lost, heartbeat)
        if silent_for is not None:
            why = "connection to %s lost: nothing from the broker for %.0fs (heartbeat %ss)"
            self._lost_with(why % (self.redacted_url, silent_for, heartbeat))
            self._drop_connection()

    async def _run_until_lost(self, lost: "asyncio.Future[None]", start: Callable[[Callable[..., None]], None]) -> Any:
        """Start one asynchronous pika operation and return what its callback got; fail if the connection goes."""
        done: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        start(lambda result=None, *_: settle(done, result=result))
        await asyncio.wait([done, lost], return_when=asyncio.FIRST_COMPLETED)
        if done.done():
            return done.result()
        raise ConnectionLost(self.state.error or "connection lost")

    def _on_connection_closed(self, connection: Any, reason: BaseException) -> None:
        if connection is not self.connection:
            return
        self.connection = None
        self._lost_with("connection to %s lost: %s" % (self.redacted_url, describe(reason)))

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if channel is not self.channel:
            return
        connection = self.connection
        if connection is None or connection.is_closing or connection.is_closed:
            self._lost_with("connection to %s lost: %s" % (self.redacted_url, describe(reason)))
        else:
            self._lost_with("channel closed: %s" % describe(reason))
        self._drop_connection()  # start again from a fresh connection

    def _on_blocked(self, connection: Any, frame: Any) -> None:
        self.blocked = getattr(frame.method, "reason", None) or "resource alarm"
        log.warning("rabbitmq sink %r: the broker blocks publishing (%s)", self.sink_name, self.blocked)
        self.state.mark_down("the broker blocks publishing: %s" % self.blocked)

    def _on_unblocked(self, connection: Any, frame: Any) -> None:
        self.blocked = None
        log.info("rabbitmq sink %r: the broker accepts publishing again", self.sink_name)
        if self.ready:
            self.state.mark_up()

    def _lost_with(self, why: str) -> None:
        self._went_down(why)
        self.channel = None
        if self._lost is not None:
            settle(self._lost)

    def _went_down(self, why: str) -> None:
        self.ready = False
        if self.closing:
            self.state.mark_down(CLOSING_REASON)
        else:
            if why != self.state.error:
                log.warning("rabbitmq sink %r: %s", self.sink_name, why)
            self.state.mark_down(why)
        self.on_down(why)

    def _drop_connection(self) -> None:
        connection, self.connection = self.connection, None
        self.channel = None
        if connection is not None and not (connection.is_closing or connection.is_closed):
            _close_quietly(connection)

    async def _shutdown(self) -> None:
        self.ready = False
        connection, self.channel = self.connection, None
        if connection is None or connection.is_closed:
            return
        if not connection.is_open and not connection.is_closing:  # still opening: abort it
            self.connection = None
            _close_quietly(connection)
            return
        self._lost = closed = asyncio.get_running_loop().create_future()
        if not connection.is_closing:
            connection.close()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(closed), GOODBYE_TIMEOUT)
        log.info("rabbitmq sink %r: connection to %s closed", self.sink_name, self.redacted_url)


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


def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):  # pika refuses in some opening or closing states: it is going anyway
        connection.close()
