"""The spool's loop side: it takes records, keeps the counts, and hands all disk work to the disk thread.

``append`` answers once the record is on disk (synced); ``holds(destination)``
says whether records of a destination are still spooled (new ones must then
follow them, to keep their order); ``read``, ``acknowledge`` and
``set_aside`` serve the replayer. The spool never fills the disk past
``max_bytes``: a record that would is refused (``SinkUnavailable``: a 503).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from sinks.base import Record, SinkUnavailable
from sinks.handoff import BatchQueue, LoopInbox, settle, stop_worker
from sinks.spool import frames, messages
from sinks.spool.disk import DiskThread
from sinks.spool.fates import Fate
from sinks.spool.lane import Lane, directory_name
from sinks.spool.progress import Position
from sinks.spool.segments import SEGMENT_BYTES, ReadRecord

log = logging.getLogger(__name__)


class Backlog:
    """One destination's records in the spool, not yet delivered.

    It lasts while the destination's log is on disk or records are being
    written to it: the disk thread, which alone knows when every record of a
    log is delivered, says when the log is gone (``Freed.removed``).
    """

    __slots__ = ("records", "appending", "oldest_ms", "on_disk")

    def __init__(self, records: int = 0, oldest_ms: Optional[int] = None, on_disk: bool = False) -> None:
        self.records = records  # on disk or being written (for /health: damage found while reading is not in it)
        self.appending = 0  # of which still being written
        self.oldest_ms = oldest_ms  # when the oldest of them was spooled (wall clock, ms)
        self.on_disk = on_disk


class Spool:
    def __init__(self, sink_name: str, options: Mapping[str, Any], segment_bytes: int = SEGMENT_BYTES) -> None:
        self.sink_name = sink_name
        self.root = os.path.join(os.path.abspath(options["directory"]), directory_name(sink_name))
        self.max_bytes: int = options["max_bytes"]
        self.sync_each = options["fsync"] == "always"
        self.segment_bytes = segment_bytes
        self.backlogs: Dict[str, Backlog] = {}
        #: the broker's later word on records spooled while in doubt, by (destination, where the record ends)
        self.fates: Dict[Tuple[str, Position], "asyncio.Future[Fate]"] = {}
        self.bytes = 0  # in segment files
        self.error: Optional[str] = "not started"  # why it takes no record at all
        self.full = False
        self.lane_path: Optional[str] = None
        self.counts = {"spooled": 0, "refused_full": 0, "torn_bytes_cut": 0, "damaged": 0}
        #: called with a destination whenever records of it were written (the replayer listens)
        self.on_appended: Callable[[str], None] = lambda destination: None
        self._reserved = 0  # bytes being written
        self._refused_size = 0  # the last record refused for want of room
        self._write_error: Optional[str] = None
        self._work: Optional[BatchQueue[messages.Work]] = None
        self._inbox: Optional[LoopInbox[messages.News]] = None
        self._thread: Optional[DiskThread] = None
        self._opened: Optional["asyncio.Future[None]"] = None

    async def start(self) -> None:
        """Take a lane and recover what it holds (read through once, damage moved aside)."""
        loop = asyncio.get_running_loop()
        self._work = BatchQueue(loop)
        self._inbox = LoopInbox(loop, self._take_news)
        self._opened = loop.create_future()
        lane = Lane(self.root, self.sink_name, self.segment_bytes, self.sync_each)
        self._thread = DiskThread(lane, self._work, self._inbox)
        self._thread.start()
        await self._opened

    @property
    def accepting(self) -> bool:
        """Whether a record would be taken now (no room is the one reason left once it is open)."""
        return self.error is None and not self.full and self._write_error is None

    @property
    def records(self) -> int:
        return sum(backlog.records for backlog in self.backlogs.values())

    def holds(self, destination: str) -> bool:
        return destination in self.backlogs

    async def append(self, destination: str, record: Record, fate: "Optional[asyncio.Future[Fate]]" = None) -> Position:
        """Spool ``record``; return (where it ends) once it is on disk."""
        work = self._work
        if self.error is not None or work is None or work.closed:
            raise SinkUnavailable("the spool cannot take records: %s" % (self.error or "closed"))
        frame = frames.encode(destination, record, int(time.time() * 1000))
        if self.bytes + self._reserved + len(frame) > self.max_bytes:
            raise self._no_room(len(frame))
        backlog = self.backlogs.get(destination)
        if backlog is None:
            backlog = self.backlogs[destination] = Backlog(oldest_ms=int(time.time() * 1000))
        backlog.records += 1
        backlog.appending += 1
        self._reserved += len(frame)
        future: "asyncio.Future[Position]" = asyncio.get_running_loop().create_future()
        work.submit(messages.Append(destination, frame, future, fate))
        return await future

    def read(self, destination: str, max_records: int, max_bytes: int) -> "asyncio.Future[List[ReadRecord]]":
        """The next records of ``destination`` (none: nothing more for now)."""
        future: "asyncio.Future[List[ReadRecord]]" = asyncio.get_running_loop().create_future()
        if self._work is None or self._work.closed:
            settle(future, SinkUnavailable("the spool is closed"))
        else:
            self._work.submit(messages.Read(destination, max_records, max_bytes, future))
        return future

    def acknowledge(self, destination: str, upto: Position, count: int, oldest_ms: Optional[int]) -> None:
        """``count`` records of ``destination`` up to ``upto`` are delivered; the oldest left was spooled at
        ``oldest_ms`` (None: not known yet)."""
        backlog = self.backlogs.get(destination)
        if backlog is not None:
            backlog.records = max(0, backlog.records - count)
            if oldest_ms is not None:
                backlog.oldest_ms = oldest_ms
        if self._work is not None and not self._work.closed:
            self._work.submit(messages.Acknowledge(destination, upto))

    def set_aside(self, destination: str, start: Position, end: Position, detail: str) -> None:
        """Move a record the broker will never take into the quarantine (it is acknowledged as any other)."""
        if self._work is not None and not self._work.closed:
            self._work.submit(messages.SetAside(destination, start, end, detail))

    def oldest_age(self) -> Optional[float]:
        """Seconds since the oldest record not yet delivered was spooled."""
        oldest = [backlog.oldest_ms for backlog in self.backlogs.values() if backlog.oldest_ms is not None]
        return max(0.0, time.time() - min(oldest) / 1000.0) if oldest else None

    def report(self) -> Dict[str, Any]:
        age = self.oldest_age()
        state = self.error or self._write_error or ("full" if self.full else "ok")
        report: Dict[str, Any] = {
            "state": state,
            "records": self.records,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "oldest_age_seconds": round(age, 3) if age is not None else None,
        }
        report.update(self.counts)
        return report

    async def close(self) -> None:
        """Let the disk thread finish what was handed over, then stop it."""
        work, thread, inbox = self._work, self._thread, self._inbox
        if work is None or thread is None or inbox is None or work.closed:
            return
        await stop_worker(work, thread, inbox)
        self.error = "closed"

    # -- what the disk thread says ---------------------------------------------------------

    def _take_news(self, news: List[messages.News]) -> None:
        for item in news:
            if isinstance(item, messages.Appended):
                self._appended(item)
            elif isinstance(item, messages.ReadBack):
                self.counts["damaged"] += item.damaged
                if item.error is not None:
                    settle(item.read.future, SinkUnavailable("cannot read the spool: %s" % _describe(item.error)))
                else:
                    settle(item.read.future, result=item.records)
            elif isinstance(item, messages.Freed):
                self.bytes -= item.bytes
                if item.removed:
                    self._log_removed(item.destination)
                if self.full and self.bytes + self._reserved + self._refused_size <= self.max_bytes:
                    self.full = False
                    log.info(
                        "spool of sink %r has room again (%d of %d bytes)", self.sink_name, self.bytes, self.max_bytes
                    )
            elif isinstance(item, messages.AppendFailed):
                self._append_failed(item)
            elif isinstance(item, messages.Opened):
                self._recovered(item)
            elif isinstance(item, messages.OpenFailed):
                self.error = "cannot open the spool in %s: %s" % (self.root, _describe(item.error))
                log.error(
                    "spool of sink %r: %s; records are refused (503) while the broker is away",
                    self.sink_name,
                    self.error,
                )
                self._settle_opened()

    def _recovered(self, opened: messages.Opened) -> None:
        self.error = None
        self.lane_path = opened.path
        for found in opened.recovered:
            if found.destination is not None and found.records:
                self.backlogs[found.destination] = Backlog(found.records, found.first_written_ms, on_disk=True)
            self.bytes += found.bytes
            self.counts["torn_bytes_cut"] += found.torn_bytes
            self.counts["damaged"] += found.damaged
        if self.backlogs or self.bytes:
            log.info(
                "spool of sink %r (%s): %d records (%d bytes) to deliver%s",
                self.sink_name,
                opened.path,
                self.records,
                self.bytes,
                "; cut %d torn bytes, moved %d damaged stretches aside"
                % (self.counts["torn_bytes_cut"], self.counts["damaged"])
                if self.counts["torn_bytes_cut"] or self.counts["damaged"]
                else "",
            )
        self._settle_opened()

    def _settle_opened(self) -> None:
        if self._opened is not None:
            settle(self._opened)

    def _appended(self, appended: messages.Appended) -> None:
        destination = appended.destination
        backlog = self.backlogs[destination]  # kept while records are being written to it
        backlog.on_disk = True
        self.bytes += appended.bytes
        for append, end in zip(appended.appends, appended.ends):
            self._reserved -= len(append.frame)
            backlog.appending -= 1
            if append.fate is not None:
                self.fates[(destination, end)] = append.fate
            settle(append.future, result=end)
        self.counts["spooled"] += len(appended.appends)
        if self._write_error is not None:
            log.info("spool of sink %r writes again", self.sink_name)
            self._write_error = None
        self.on_appended(destination)

    def _append_failed(self, failed: messages.AppendFailed) -> None:
        reason = _describe(failed.error)
        if self._write_error is None:
            log.error("spool of sink %r cannot write: %s", self.sink_name, reason)
        self._write_error = "cannot write: %s" % reason
        error = SinkUnavailable("the spool cannot take the record: %s" % reason)
        for append in failed.appends:
            self._reserved -= len(append.frame)
            backlog = self.backlogs[append.destination]
            backlog.records -= 1
            backlog.appending -= 1
            if not backlog.appending and not backlog.on_disk:
                del self.backlogs[append.destination]
            settle(append.future, error)

    def _log_removed(self, destination: str) -> None:
        """Every record of the destination's log is delivered and the log is gone: it holds nothing more,
        unless records are being written to it again."""
        backlog = self.backlogs.get(destination)
        if backlog is None:
            return
        backlog.on_disk = False
        if not backlog.appending:
            del self.backlogs[destination]

    def _no_room(self, size: int) -> SinkUnavailable:
        self.counts["refused_full"] += 1
        self._refused_size = size
        if not self.full:
            self.full = True
            log.warning(
                "spool of sink %r is full (%d of max_bytes %d): records that must be spooled get 503 until "
                "delivered ones free room",
                self.sink_name,
                self.bytes + self._reserved,
                self.max_bytes,
            )
        return SinkUnavailable("the spool is full (max_bytes %d)" % self.max_bytes)


def _describe(error: OSError) -> str:
    text = error.strerror or str(error)
    return "%s: %s" % (error.filename, text) if error.filename else text
