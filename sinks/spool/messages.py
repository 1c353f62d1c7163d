"""What goes between the spool's loop side and its disk thread.

Loop -> thread: ``Work`` items through a ``BatchQueue`` (what one loop
iteration submits arrives together: the records of a burst share one write
and one fsync). Thread -> loop: ``News`` through one ``LoopInbox``; only the
loop side settles futures and keeps the counts.
"""

from __future__ import annotations

import asyncio
from typing import List, NamedTuple, Optional, Union

from sinks.spool.fates import Fate
from sinks.spool.progress import Position
from sinks.spool.segments import ReadRecord, Recovered


class Append(NamedTuple):
    """Write one framed record; ``future`` gets where it ends once it is on disk."""

    destination: str
    frame: bytes
    future: "asyncio.Future[Position]"
    fate: Optional["asyncio.Future[Fate]"]  # the broker's later word on an earlier attempt (see ``fates``)


class Read(NamedTuple):
    """The next records of a destination after those read before; ``future`` gets them (none: nothing more now)."""

    destination: str
    max_records: int
    max_bytes: int
    future: "asyncio.Future[List[ReadRecord]]"


class Acknowledge(NamedTuple):
    """Every record of ``destination`` before ``upto`` is delivered."""

    destination: str
    upto: Position


class SetAside(NamedTuple):
    """Copy a record the broker refuses for good into the quarantine."""

    destination: str
    start: Position
    end: Position
    detail: str


Work = Union[Append, Read, Acknowledge, SetAside]


class Opened(NamedTuple):
    """The lane is taken and recovered: what it holds."""

    path: str
    recovered: List[Recovered]


class OpenFailed(NamedTuple):
    error: OSError


class Appended(NamedTuple):
    destination: str
    appends: List[Append]
    ends: List[Position]
    bytes: int


class AppendFailed(NamedTuple):
    destination: str
    appends: List[Append]
    error: OSError


class ReadBack(NamedTuple):
    read: Read
    records: List[ReadRecord]
    damaged: int  # stretches of damage found (and moved aside) while reading
    error: Optional[OSError]


class Freed(NamedTuple):
    """Delivered segments were deleted (``removed``: the destination's whole log)."""

    destination: str
    bytes: int
    removed: bool


News = Union[Opened, OpenFailed, Appended, AppendFailed, ReadBack, Freed]
