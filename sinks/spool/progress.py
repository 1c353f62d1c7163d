"""How far a destination's records have been delivered: a cursor that survives a crash.

The cursor is a ``Position``: the segment and byte offset where the first record
not yet acknowledged by the broker begins. It is kept in a small file of two
slots written in turn (``pwrite``), each with a counter and a checksum: a
write torn by a crash spoils at most the slot being written, and the other
still holds the previous cursor. Reading takes the sound slot with the higher
counter. No rename, no growing file, one small write per update.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import NamedTuple, Optional

PROGRESS_FILE = "progress"
_SLOT = struct.Struct(">QQQI")  # counter, segment, offset, crc of the three
SLOT_BYTES = 32


class Position(NamedTuple):
    """A place in a destination's log: segment number and byte offset (tuples order them)."""

    segment: int
    offset: int


class ProgressFile:
    """The cursor of one destination; used by the spool's disk thread alone."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, PROGRESS_FILE)
        self._fd: Optional[int] = None
        self._counter = 0
        self.cursor: Optional[Position] = None
        self.dirty = False  # written since the last sync

    def load(self) -> Optional[Position]:
        """The cursor the file holds (None: no file, or no sound slot)."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(2 * SLOT_BYTES)
        except FileNotFoundError:
            return None
        best = None
        for at in (0, SLOT_BYTES):
            slot = data[at : at + _SLOT.size]
            if len(slot) < _SLOT.size:
                continue
            counter, segment, offset, crc = _SLOT.unpack(slot)
            if zlib.crc32(slot[:24]) == crc and (best is None or counter > best[0]):
                best = (counter, Position(segment, offset))
        if best is None:
            return None
        self._counter, self.cursor = best
        return self.cursor

    def write(self, cursor: Position) -> bool:
        """Record ``cursor`` (not synced yet); True if the file was created by this write."""
        created = self._fd is None and not os.path.exists(self.path)
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._counter += 1
        body = struct.pack(">QQQ", self._counter, cursor.segment, cursor.offset)
        os.pwrite(self._fd, body + struct.pack(">I", zlib.crc32(body)), (self._counter % 2) * SLOT_BYTES)
        self.cursor = cursor
        self.dirty = True
        return created

    def sync(self) -> None:
        if self._fd is not None and self.dirty:
            os.fdatasync(self._fd)
        self.dirty = False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
