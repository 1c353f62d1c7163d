"""Delivers spooled records to the broker: oldest first per destination, at a bounded rate, with the same headers.

Per destination, records are read from disk a window at a time (memory stays
a few windows whatever the spool holds) and sent in order, several in flight
(the producer and the channel keep their order). The cursor moves past a
record only once the broker acknowledged it and every record before it; then
the segments it passed are deleted. A record whose first attempt is in doubt
(see ``fates``) holds its destination until the broker's word on it comes.
The rate (``replay_rate``, records per second) and the records in flight
(``WINDOW``) are bounded, so a long backlog never crowds out live traffic: the
default rate is above what one process can take over HTTP, so the spool drains
even under full load. While the broker refuses (the sink is down), replay pauses
with a growing backoff, and one record probes again.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional

from sinks.base import DestinationNotFound, Receipt, Record, RecordTooLarge, SinkUnavailable
from sinks.spool.fates import Fate, InDoubt
from sinks.spool.progress import Position
from sinks.spool.segments import ReadRecord
from sinks.spool.store import Spool

log = logging.getLogger(__name__)

#: records sent and not yet acknowledged, all destinations together.
WINDOW = 256
#: a destination's records are read ahead this many at a time, and again once fewer are left.
READ_RECORDS = 256
READ_BYTES = 4 << 20
#: records read ahead of delivery, all destinations together (bytes).
MAX_BUFFERED_BYTES = 32 << 20
#: pauses after the broker refused: the first and the longest (seconds).
FIRST_PAUSE = 0.25
LONGEST_PAUSE = 5.0

Publish = Callable[[str, Record], Awaitable[Optional[Receipt]]]

_WAITING, _SENDING, _DONE = 0, 1, 2


class _Item:
    __slots__ = ("read", "state", "fate")

    def __init__(self, read: ReadRecord) -> None:
        self.read = read
        self.state = _WAITING
        self.fate: "Optional[asyncio.Future[Fate]]" = None  # the broker's word on an earlier attempt, awaited


class _Stream:
    """One destination's records read from disk and not yet delivered, in order."""

    __slots__ = ("destination", "items", "next", "reading", "exhausted", "bytes")

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.items: Deque[_Item] = collections.deque()
        self.next = 0  # items before this index are sent or done: the next look starts here
        self.reading = False
        self.exhausted = False  # the last read found nothing more (until records are appended)
        self.bytes = 0


class RateMeter:
    """Events per second over the last ``span`` seconds."""

    def __init__(self, span: int = 10) -> None:
        self.span = span
        self._counts: Deque[List[float]] = collections.deque()  # [second, count]
        self.total = 0

    def add(self, count: int = 1) -> None:
        second = float(int(time.monotonic()))
        if self._counts and self._counts[-1][0] == second:
            self._counts[-1][1] += count
        else:
            self._counts.append([second, count])
        self.total += count

    def rate(self) -> float:
        now = time.monotonic()
        while self._counts and self._counts[0][0] <= now - self.span:
            self._counts.popleft()
        if not self._counts:
            return 0.0
        covered = min(self.span, max(1.0, now - self._counts[0][0]))
        return sum(count for _, count in self._counts) / covered


class Replayer:
    def __init__(self, spool: Spool, publish: Publish, rate: int) -> None:
        self.spool = spool
        self.sink_name = spool.sink_name
        self._publish = publish
        self.rate = rate
        self._burst = max(1.0, rate / 20.0)  # at most 50 ms of records at once
        self._tokens = self._burst
        self._refilled = time.monotonic()
        self._streams: Dict[str, _Stream] = {}
        self._in_flight = 0
        self._buffered = 0
        self._paused_until = 0.0
        self._pause = FIRST_PAUSE
        self._refusal: Optional[str] = None  # why the broker refuses, while it does
        self._wake = asyncio.Event()
        self._task: "Optional[asyncio.Future[None]]" = None
        self._stopping = False
        self._turns = 0
        self.meter = RateMeter()
        self.in_doubt = 0  # records sent again after a first attempt of unknown fate: maybe twice in the broker
        self.set_aside = 0
        spool.on_appended = self._appended

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self, timeout: float) -> None:
        """Send nothing more; wait up to ``timeout`` for the records in flight to be answered."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def report(self) -> Dict[str, Any]:
        return {
            "replayed": self.meter.total,
            "replay_rate": round(self.meter.rate(), 1),
            "in_doubt": self.in_doubt,
            "set_aside": self.set_aside,
        }

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            delay = self._turn()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    def _turn(self) -> Optional[float]:
        """Acknowledge, read ahead and send what can be now; how long until more could be sent (None: on news)."""
        now = time.monotonic()
        paused = now < self._paused_until
        self._refill(now)
        backlogs = self.spool.backlogs
        for destination in [name for name in self._streams if name not in backlogs]:
            self._drop(self._streams.pop(destination))
        delay: Optional[float] = self._paused_until - now if paused else None
        names = list(backlogs)
        if names:  # each turn another destination goes first: one long backlog does not starve the others
            self._turns += 1
            first = self._turns % len(names)
            names = names[first:] + names[:first]
        for destination in names:
            stream = self._streams.get(destination)
            if stream is None:
                stream = self._streams[destination] = _Stream(destination)
            self._acknowledge(stream)
            self._read_ahead(stream)
            wait = None if paused else self._send(stream)
            if wait is not None:
                delay = wait if delay is None else min(delay, wait)
        return delay

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now

    def _read_ahead(self, stream: _Stream) -> None:
        if stream.reading or stream.exhausted or len(stream.items) >= READ_RECORDS:
            return
        if self._buffered >= MAX_BUFFERED_BYTES:
            return
        stream.reading = True
        future = self.spool.read(stream.destination, READ_RECORDS, READ_BYTES)
        future.add_done_callback(lambda done: self._read_back(stream, done))

    def _read_back(self, stream: _Stream, done: "asyncio.Future[List[ReadRecord]]") -> None:
        stream.reading = False
        self._wake.set()
        if done.exception() is not None:
            self._paused(str(done.exception()))
            return
        records = done.result()
        if not records:
            stream.exhausted = True
            return
        if not stream.items:
            backlog = self.spool.backlogs.get(stream.destination)
            if backlog is not None:
                backlog.oldest_ms = records[0].entry.written_ms
        fates = self.spool.fates
        for read in records:
            item = _Item(read)
            if fates:
                self._hold(item, fates.pop((stream.destination, read.end), None))
            stream.items.append(item)
            size = read.end.offset - read.start.offset
            stream.bytes += size
            self._buffered += size

    def _send(self, stream: _Stream) -> Optional[float]:
        """Send the stream's next records, in order, while the window and the rate allow."""
        index = stream.next
        for item in itertools.islice(stream.items, index, None):
            if item.state != _WAITING:
                index += 1
                continue
            if item.fate is not None:
                if not item.fate.done():
                    break  # its first attempt may still arrive: nothing after it goes first
                fate, item.fate = item.fate.result(), None
                if fate is Fate.DELIVERED:
                    item.state = _DONE
                    index += 1
                    continue
                if fate is Fate.UNKNOWN:
                    self.in_doubt += 1
            if self._in_flight >= WINDOW or self._stopping:
                break
            if self._tokens < 1:
                stream.next = index
                return (1 - self._tokens) / self.rate
            self._tokens -= 1
            self._in_flight += 1
            item.state = _SENDING
            asyncio.ensure_future(self._deliver(stream, item))
            index += 1
            if self._paused_until:  # a probe after a pause: one record, then wait for its answer
                break
        stream.next = index
        return None

    async def _deliver(self, stream: _Stream, item: _Item) -> None:
        try:
            await self._publish(stream.destination, item.read.entry.record)
        except InDoubt as doubt:
            self._again(stream, item)
            self._hold(item, doubt.fate)
        except SinkUnavailable as exc:
            self._again(stream, item)
            self._paused(str(exc))
        except (DestinationNotFound, RecordTooLarge) as exc:
            self.spool.set_aside(stream.destination, item.read.start, item.read.end, "the broker refuses it: %s" % exc)
            self.set_aside += 1
            item.state = _DONE
        except Exception as exc:  # a bug: say so, and try again later rather than lose the record
            log.exception("spool of sink %r: replaying a record failed", self.sink_name)
            self._again(stream, item)
            self._paused("%s: %s" % (type(exc).__name__, exc))
        else:
            item.state = _DONE
            self.meter.add()
            self._resumed()
        finally:
            self._in_flight -= 1
            self._wake.set()

    def _acknowledge(self, stream: _Stream) -> None:
        """Move the cursor past the records delivered with none before them still open."""
        items = stream.items
        count = 0
        last: Optional[Position] = None
        while items and items[0].state == _DONE:
            item = items.popleft()
            last = item.read.end
            size = item.read.end.offset - item.read.start.offset
            stream.bytes -= size
            self._buffered -= size
            count += 1
        if last is not None:
            stream.next = max(0, stream.next - count)
            oldest = items[0].read.entry.written_ms if items else None
            self.spool.acknowledge(stream.destination, last, count, oldest)

    @staticmethod
    def _again(stream: _Stream, item: _Item) -> None:
        """``item`` is to be sent again: the next look at the stream starts from its first record."""
        item.state = _WAITING
        stream.next = 0

    def _hold(self, item: _Item, fate: "Optional[asyncio.Future[Fate]]") -> None:
        """Keep ``item`` (and its destination's later records) until ``fate`` is known."""
        item.fate = fate
        if fate is not None and not fate.done():
            fate.add_done_callback(lambda _: self._wake.set())

    def _drop(self, stream: _Stream) -> None:
        self._buffered -= stream.bytes

    def _appended(self, destination: str) -> None:
        stream = self._streams.get(destination)
        if stream is not None:
            stream.exhausted = False
        self._wake.set()

    def _paused(self, reason: str) -> None:
        """The broker refused: pause, longer each time (the records failing together count once)."""
        if self._refusal is None:
            log.warning("spool of sink %r: replay paused, the broker refuses: %s", self.sink_name, reason)
        self._refusal = reason
        now = time.monotonic()
        if now >= self._paused_until:
            self._paused_until = now + self._pause
            self._pause = min(self._pause * 2, LONGEST_PAUSE)

    def _resumed(self) -> None:
        if self._refusal is not None:
            log.info("spool of sink %r: the broker takes records again; replay goes on", self.sink_name)
        self._refusal = None
        self._paused_until = 0.0
        self._pause = FIRST_PAUSE
