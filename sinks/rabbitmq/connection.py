"""One connection and one confirming channel to the broker, kept open: connect, fail over, fail back, notice loss.

The nodes and their order are ``nodes.NodeList``'s; one connection is a
``link.Link``. The keeper picks the node, opens links, moves the sink's health
on what happens to the link in use, and returns to the first node without
failing a request: it opens the new link first, switches every new publish to
it at once, and closes the old one once its last confirms are in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from sinks.health import HealthState
from sinks.rabbitmq.errors import ConnectionLost, describe
from sinks.rabbitmq.link import ChannelSetup, Link, LinkListener, silence_or_loss
from sinks.rabbitmq.nodes import Backoff, Node, NodeList

log = logging.getLogger(__name__)

CLOSING_REASON = "the sink is closing"
#: how long one attempt (TCP, TLS, AMQP handshake, channel, topology) may take, in connect timeouts
CONNECT_TIMEOUTS_PER_ATTEMPT = 2
#: how long a closing connection may take to say goodbye, in seconds
GOODBYE_TIMEOUT = 2.0
#: how often a retiring connection looks whether its last confirms came, in seconds
RETIRE_POLL_INTERVAL = 0.01


@dataclass(eq=False)
class ConnectionKeeper(LinkListener):
    """Keeps one link open, and moves the sink's health on what happens to it.

    Up once the channel is ready and the broker does not block publishing; down
    with the reason otherwise, one warning line per new reason. A loss
    reconnects at once, to the next node; a failed round of attempts waits its
    ``Backoff``; there is no attempt limit. ``channel_lost(channel, reason)``
    fails the records awaiting a confirm on a channel that is gone;
    ``awaiting_confirms(channel)`` counts them.
    """

    sink_name: str
    nodes: NodeList
    connect_timeout: float
    backoff: Backoff
    state: HealthState
    setup_channel: ChannelSetup
    channel_lost: Callable[[Any, str], None]
    awaiting_confirms: Callable[[Any], int]
    link: Optional[Link] = field(default=None, init=False)  # the link in use: open, set up, not lost
    closing: bool = field(default=False, init=False)
    connects: int = field(default=0, init=False)
    _retiring: Dict[Link, "asyncio.Task[None]"] = field(default_factory=dict, init=False)  # closing once confirmed
    _runner: Optional["asyncio.Task[None]"] = field(default=None, init=False)

    @property
    def channel(self) -> Any:
        """The channel to publish on, or None while not connected."""
        return self.link.channel if self.link is not None else None

    @property
    def ready(self) -> bool:
        return self.link is not None

    @property
    def node(self) -> Node:
        """The node in use, or the one tried next."""
        return self.link.node if self.link is not None else self.nodes.current

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

    # -- what a link says ------------------------------------------------------------

    def link_lost(self, link: Link, why: str) -> None:
        self.channel_lost(link.channel, why)
        if link is self.link:
            self.link = None
            self._went_down(why)

    def link_blocked(self, link: Link) -> None:
        if link is self.link:
            log.warning("rabbitmq sink %r: the broker blocks publishing (%s)", self.sink_name, link.blocked)
            self.state.mark_down("the broker blocks publishing: %s" % link.blocked)

    def link_unblocked(self, link: Link) -> None:
        if link is self.link:
            log.info("rabbitmq sink %r: the broker accepts publishing again", self.sink_name)
            self.state.mark_up()

    # -- keeping connected -----------------------------------------------------------

    async def _keep_connected(self, first_attempt: asyncio.Event) -> None:
        try:
            while not self.closing:
                node = self.nodes.current
                try:
                    link = await self._open(node)
                except Exception as exc:
                    self._went_down(_failed_attempt(node, exc))
                    first_attempt.set()
                    if self.nodes.attempt_failed():  # a whole round failed: wait before the next
                        await asyncio.sleep(self.backoff.next_delay())
                    continue
                if not self._use(link):
                    self._went_down(link.why or "connection lost")
                first_attempt.set()
                while not self.closing and await self._serve(link):  # True: time to return to the first node
                    link = await self._fail_back(link)
                self.nodes.lost()  # reconnect at once, to the next node; back off from the next failed round
        finally:
            await self._shutdown()

    async def _open(self, node: Node) -> Link:
        link = Link(node, self)
        try:
            await asyncio.wait_for(link.open(self.setup_channel), self.connect_timeout * CONNECT_TIMEOUTS_PER_ATTEMPT)
        except BaseException:
            link.close()
            raise
        return link

    def _use(self, link: Link) -> bool:
        """From now on every record is published on ``link``; False if it was lost already."""
        if link.lost.done():
            return False
        self.link = link
        self.connects += 1
        self.backoff.reset()
        self.nodes.connected(link.node)
        log.info(
            "rabbitmq sink %r: connected to %s (%s)",
            self.sink_name,
            link.node.redacted_url,
            "reconnect %d" % (self.connects - 1) if self.connects > 1 else "first connect",
        )
        if link.blocked is None:
            self.state.mark_up()
        else:
            self.link_blocked(link)
        return True

    async def _serve(self, link: Link) -> bool:
        """Wait until ``link`` is lost (False), or until it is time to go back to the first node (True)."""
        watch = asyncio.ensure_future(silence_or_loss(link.connection, link.lost, link.node.parameters.heartbeat or 0))
        failback = asyncio.ensure_future(self.nodes.failback_due(self.connect_timeout))
        try:
            await asyncio.wait([watch, failback], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, failback):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        silent_for = watch.result() if watch.done() and not watch.cancelled() else None
        if silent_for is not None:
            heartbeat = link.node.parameters.heartbeat
            why = "connection to %s lost: nothing from the broker for %.0fs (heartbeat %ss)"
            link.give_up(why % (link.node.redacted_url, silent_for, heartbeat))
        return not link.lost.done()

    async def _fail_back(self, current: Link) -> Link:
        """Open a link to the first node; once it is ready, publish on it and retire ``current``."""
        first = self.nodes.first
        try:
            link = await self._open(first)
        except Exception as exc:
            log.warning(
                "rabbitmq sink %r: staying on %s: %s",
                self.sink_name,
                current.node.redacted_url,
                _failed_attempt(first, exc),
            )
            return current
        log.info("rabbitmq sink %r: back to %s from %s", self.sink_name, first.redacted_url, current.node.redacted_url)
        if not self._use(link):
            return current
        self._retiring[current] = asyncio.ensure_future(self._retire(current))
        return link

    async def _retire(self, link: Link) -> None:
        """Close ``link`` once no record awaits a confirm on it (its confirm tracker times them out)."""
        try:
            while self.awaiting_confirms(link.channel) and not link.lost.done():
                await asyncio.sleep(RETIRE_POLL_INTERVAL)
            await link.goodbye(GOODBYE_TIMEOUT)
        finally:
            self._retiring.pop(link, None)

    def _went_down(self, why: str) -> None:
        if self.closing:
            self.state.mark_down(CLOSING_REASON)
            return
        if why != self.state.error:
            log.warning("rabbitmq sink %r: %s", self.sink_name, why)
        self.state.mark_down(why)

    async def _shutdown(self) -> None:
        retiring, self._retiring = self._retiring, {}
        for task in retiring.values():
            task.cancel()
        links = list(retiring) + ([self.link] if self.link is not None else [])
        self.link = None
        for link in links:
            if await link.goodbye(GOODBYE_TIMEOUT):
                log.info("rabbitmq sink %r: connection to %s closed", self.sink_name, link.node.redacted_url)


def _failed_attempt(node: Node, error: BaseException) -> str:
    if isinstance(error, ConnectionLost):
        return str(error)  # already says which connection and why
    return "cannot connect to %s: %s" % (node.redacted_url, describe(error))
