"""One destination's records on disk: append-only segment files, a read position, a durable cursor.

A destination's directory holds ``0000000001.seg``, ``0000000002.seg``, ...
(frames, see ``frames``) and ``progress`` (the cursor, see ``progress``).
Records are appended to the newest segment, which is sealed once it passes
``segment_bytes``; they are read back in order from the cursor on; a segment
is deleted once the cursor, made durable first, has passed all of it. Used by
the spool's disk thread alone.
"""

from __future__ import annotations

import errno
import os
from typing import List, NamedTuple, Optional, Tuple

from sinks.spool import frames
from sinks.spool.durable import make_directory, sync_directory, write_all
from sinks.spool.progress import PROGRESS_FILE, Position, ProgressFile
from sinks.spool.quarantine import Quarantine

SUFFIX = ".seg"
#: a segment is sealed, and a new one begun, once it is this large.
SEGMENT_BYTES = 16 << 20

_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class Recovered(NamedTuple):
    """What start-up found in one destination's log."""

    destination: Optional[str]  # None: no sound record in it
    records: int  # not yet delivered
    first_written_ms: Optional[int]  # when the oldest of them was spooled
    bytes: int  # on disk after repair
    torn_bytes: int  # cut off the end of segments (writes a crash cut short)
    damaged: int  # stretches of damage moved aside


class ReadRecord(NamedTuple):
    start: Position
    end: Position
    entry: frames.Entry


class _Segment:
    __slots__ = ("number", "size")

    def __init__(self, number: int, size: int) -> None:
        self.number, self.size = number, size


class DestinationLog:
    def __init__(
        self, path: str, quarantine: Quarantine, segment_bytes: int = SEGMENT_BYTES, sync_each: bool = False
    ) -> None:
        self.path = path
        self.destination: Optional[str] = None
        self.segment_bytes = segment_bytes
        self.sync_each = sync_each  # fsync: always (a write and a sync per record)
        self._quarantine = quarantine
        self._segments: List[_Segment] = []
        self._progress = ProgressFile(path)
        self._read_at = Position(1, 0)
        self._append_fd: Optional[int] = None
        self._read_fd: Optional[Tuple[int, int]] = None  # (segment number, fd)

    # -- sizes and positions -----------------------------------------------------------

    @property
    def size(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def drained(self) -> bool:
        """Every record in it is delivered (or there never was one)."""
        cursor = self._progress.cursor or Position(0, 0)
        return all(segment.size == 0 or Position(segment.number, segment.size) <= cursor for segment in self._segments)

    def segment_path(self, number: int) -> str:
        return os.path.join(self.path, "%010d%s" % (number, SUFFIX))

    # -- start-up ---------------------------------------------------------------------

    def recover(self) -> Recovered:
        """Find the cursor and the segments; cut torn tails, move damage aside, count what is left to deliver."""
        cursor = self._progress.load()
        numbers = sorted(int(name[: -len(SUFFIX)]) for name in os.listdir(self.path) if _is_segment(name))
        records = torn = damaged = 0
        first_ms: Optional[int] = None
        for number in numbers:
            path = self.segment_path(number)
            if cursor is not None and number < cursor.segment:
                os.unlink(path)  # delivered before the crash; its removal did not happen yet
                continue
            size = os.path.getsize(path)
            start = cursor.offset if cursor is not None and number == cursor.segment else 0
            if not self._segments:
                self._read_at = Position(number, min(start, size))
            with open(path, "rb") as handle:
                fd = handle.fileno()
                for item in frames.scan(frames.reader(fd), start, size):
                    if isinstance(item, frames.Frame):
                        entry, _ = self._entry(path, item)
                        if entry is None:
                            damaged += 1
                            continue
                        records += 1
                        first_ms = entry.written_ms if first_ms is None else first_ms
                    elif item.tail:
                        self._quarantine.keep(
                            path, item.start, item.end, "torn", "a write cut short by a crash, cut off the end"
                        )
                        _truncate_durably(path, item.start)
                        torn += item.end - item.start
                        size = item.start
                    else:
                        self._quarantine.keep(path, item.start, item.end, "damaged", "damaged bytes in the spool")
                        damaged += 1
            self._segments.append(_Segment(number, size))
        return Recovered(self.destination, records, first_ms, self.size, torn, damaged)

    def _entry(self, path: str, frame: frames.Frame) -> Tuple[Optional[frames.Entry], bool]:
        """The frame's record; or None once a frame that cannot be decoded (or belongs elsewhere) is moved
        aside, and whether that was news (not moved aside before)."""
        try:
            entry = frames.decode(frame.payload)
        except ValueError as exc:
            return None, self._quarantine.keep(path, frame.start, frame.end, "damaged", str(exc)) is not None
        if self.destination is None:
            self.destination = entry.destination
        elif entry.destination != self.destination:
            detail = "a record for %r in the log of %r" % (entry.destination, self.destination)
            return None, self._quarantine.keep(path, frame.start, frame.end, "foreign", detail) is not None
        return entry, False

    # -- appending ---------------------------------------------------------------------

    def append(self, records: List[bytes]) -> Tuple[List[Position], int]:
        """Write framed records and sync them; where each ends, and how many bytes were added.

        On failure nothing of this call stays in the segment (it is truncated back) and the error is raised.
        """
        fd, segment = self._active_segment()
        before = segment.size
        ends = []
        try:
            if self.sync_each:
                for record in records:
                    write_all(fd, record)
                    os.fdatasync(fd)
                    segment.size += len(record)
                    ends.append(Position(segment.number, segment.size))
            else:
                data = b"".join(records)
                write_all(fd, data)
                os.fdatasync(fd)
                for record in records:
                    segment.size += len(record)
                    ends.append(Position(segment.number, segment.size))
        except OSError:
            segment.size = before
            try:
                os.ftruncate(fd, before)
            except OSError:
                pass
            raise
        return ends, segment.size - before

    def _active_segment(self) -> Tuple[int, _Segment]:
        """The segment to append to: the newest one while it has room; a new one after start-up (the segments
        found then are sealed) or once it is full."""
        newest = self._segments[-1] if self._segments else None
        if self._append_fd is not None and newest is not None and newest.size < self.segment_bytes:
            return self._append_fd, newest
        cursor = self._progress.cursor
        number = max(newest.number if newest else 0, cursor.segment if cursor else 0) + 1
        self._close_append()
        make_directory(self.path)
        fd = os.open(self.segment_path(number), _APPEND_FLAGS | os.O_EXCL, 0o600)
        sync_directory(self.path)
        segment = _Segment(number, 0)
        self._segments.append(segment)
        self._append_fd = fd
        return fd, segment

    # -- reading -----------------------------------------------------------------------

    def read(self, max_records: int, max_bytes: int) -> Tuple[List[ReadRecord], int]:
        """The next records after the last ones read (oldest first), up to either bound; and how many stretches
        of damage not seen before were found on the way (and moved aside)."""
        found: List[ReadRecord] = []
        taken = damaged = 0
        while len(found) < max_records and taken < max_bytes:
            segment = self._segment_to_read()
            if segment is None:
                break
            number, fd = self._reader(segment.number)
            path = self.segment_path(number)
            for item in frames.scan(frames.reader(fd), self._read_at.offset, segment.size):
                if isinstance(item, frames.Frame):
                    entry, news = self._entry(path, item)
                    damaged += news
                    if entry is not None:
                        found.append(ReadRecord(Position(number, item.start), Position(number, item.end), entry))
                        taken += item.end - item.start
                elif self._quarantine.keep(path, item.start, item.end, "damaged", "damaged bytes in the spool"):
                    damaged += 1  # not found at start-up: it came since
                self._read_at = Position(number, item.end)
                if len(found) >= max_records or taken >= max_bytes:
                    break
        return found, damaged

    def _segment_to_read(self) -> Optional[_Segment]:
        for index, segment in enumerate(self._segments):
            if segment.number < self._read_at.segment:
                continue
            if segment.number > self._read_at.segment:
                self._read_at = Position(segment.number, 0)
            if self._read_at.offset < segment.size:
                return segment
            if index + 1 == len(self._segments):
                return None
        return None

    def _reader(self, number: int) -> Tuple[int, int]:
        if self._read_fd is None or self._read_fd[0] != number:
            self._close_reader()
            self._read_fd = (number, os.open(self.segment_path(number), os.O_RDONLY | os.O_CLOEXEC))
        return self._read_fd

    def copy_aside(self, start: Position, end: Position, why: str, detail: str) -> None:
        """Move a record the broker refuses for good aside (it stays in its segment until that is deleted)."""
        self._quarantine.keep(self.segment_path(start.segment), start.offset, end.offset, why, detail)

    # -- delivery progress -------------------------------------------------------------

    def acknowledge(self, upto: Position) -> None:
        """Everything before ``upto`` is delivered (written now, made durable by ``sync_progress``)."""
        cursor = self._progress.cursor
        if cursor is None or upto > cursor:
            if self._progress.write(upto):
                sync_directory(self.path)

    def sync_progress(self) -> None:
        self._progress.sync()

    def remove_delivered(self) -> int:
        """Delete the sealed segments the durable cursor has passed; the bytes freed."""
        cursor = self._progress.cursor
        freed = 0
        while cursor is not None and len(self._segments) > 1:
            first = self._segments[0]
            if first.number > cursor.segment or (first.number == cursor.segment and cursor.offset < first.size):
                break
            self._close_reader(first.number)
            os.unlink(self.segment_path(first.number))
            freed += first.size
            self._segments.pop(0)
        return freed

    def remove(self) -> int:
        """Delete the whole log (every record in it is delivered); the bytes freed."""
        freed = self.size
        self.close()
        for segment in self._segments:
            _unlink_quietly(self.segment_path(segment.number))
        self._segments = []
        if os.path.isdir(self.path):
            sync_directory(self.path)  # the segments are gone before the cursor that says they were delivered
            _unlink_quietly(os.path.join(self.path, PROGRESS_FILE))
            try:
                os.rmdir(self.path)
            except OSError as exc:  # something else was put there: leave it
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
        return freed

    def close(self) -> None:
        self._close_append()
        self._close_reader()
        self._progress.close()

    def _close_append(self) -> None:
        if self._append_fd is not None:
            os.close(self._append_fd)
            self._append_fd = None

    def _close_reader(self, number: Optional[int] = None) -> None:
        if self._read_fd is not None and (number is None or self._read_fd[0] == number):
            os.close(self._read_fd[1])
            self._read_fd = None


def _truncate_durably(path: str, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_segment(name: str) -> bool:
    return name.endswith(SUFFIX) and name[: -len(SUFFIX)].isdigit()


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
