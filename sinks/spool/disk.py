"""The spool's one disk thread: all its file work happens here, so the IOLoop never waits on the disk.

It takes the lane and recovers it first, then serves what the loop hands
over, in the order handed: appends (grouped per destination: one write and one
fsync for the records of a batch, or one each with ``fsync: always``), records
set aside, acknowledgements (cursors written, synced once per batch, then the
segments they passed deleted), and reads. It reports through one inbox.
"""

from __future__ import annotations

import logging
import threading
from typing import Dict, List

from sinks.handoff import BatchQueue, LoopInbox
from sinks.spool.lane import Lane
from sinks.spool.messages import (
    Acknowledge,
    Append,
    Appended,
    AppendFailed,
    Freed,
    News,
    Opened,
    OpenFailed,
    Read,
    ReadBack,
    SetAside,
    Work,
)
from sinks.spool.progress import Position

log = logging.getLogger(__name__)


class DiskThread(threading.Thread):
    def __init__(self, lane: Lane, work: BatchQueue[Work], news: LoopInbox[News]) -> None:
        super().__init__(name="spool-%s" % lane.sink_name, daemon=True)
        self._lane = lane
        self._work = work
        self._news = news

    def run(self) -> None:
        try:
            self._lane.take()
            recovered = self._lane.recover()
        except OSError as exc:
            self._lane.close()
            self._news.post(OpenFailed(exc))
            self._refuse_until_stopped(exc)
            return
        self._news.post(Opened(self._lane.path, recovered))
        stop = False
        try:
            while not stop:
                work, stop = self._work.take()
                if work:
                    self._news.post_all(self._carry_out(work))
        finally:
            self._lane.close()

    def _refuse_until_stopped(self, error: OSError) -> None:
        stop = False
        while not stop:
            work, stop = self._work.take()
            appends = [item for item in work if isinstance(item, Append)]
            news: List[News] = [ReadBack(item, [], 0, error) for item in work if isinstance(item, Read)]
            if appends:
                news.append(AppendFailed("", appends, error))
            self._news.post_all(news)

    def _carry_out(self, work: List[Work]) -> List[News]:
        appends: Dict[str, List[Append]] = {}
        acknowledged: Dict[str, Position] = {}
        asides: List[SetAside] = []
        reads: List[Read] = []
        for item in work:
            if isinstance(item, Append):
                appends.setdefault(item.destination, []).append(item)
            elif isinstance(item, Acknowledge):
                acknowledged[item.destination] = max(item.upto, acknowledged.get(item.destination, item.upto))
            elif isinstance(item, SetAside):
                asides.append(item)
            else:
                reads.append(item)
        news: List[News] = [self._append(destination, batch) for destination, batch in appends.items()]
        for aside in asides:  # before the acknowledgements, which may delete its segment
            self._set_aside(aside)
        news += self._acknowledge(acknowledged)
        news += [self._read(read) for read in reads]
        return news

    def _append(self, destination: str, batch: List[Append]) -> News:
        try:
            ends, added = self._lane.log_for(destination).append([item.frame for item in batch])
        except OSError as exc:
            return AppendFailed(destination, batch, exc)
        return Appended(destination, batch, ends, added)

    def _set_aside(self, aside: SetAside) -> None:
        destination_log = self._lane.logs.get(aside.destination)
        if destination_log is None:
            return
        try:
            destination_log.copy_aside(aside.start, aside.end, "refused", aside.detail)
        except OSError as exc:
            log.error("spool of sink %r: could not move a refused record aside: %s", self._lane.sink_name, exc)

    def _acknowledge(self, acknowledged: Dict[str, Position]) -> List[News]:
        logs = []
        for destination, upto in acknowledged.items():
            destination_log = self._lane.logs.get(destination)
            if destination_log is None:
                continue
            try:
                destination_log.acknowledge(upto)
                logs.append((destination, destination_log))
            except OSError as exc:
                log.error("spool of sink %r: cannot record delivery progress: %s", self._lane.sink_name, exc)
        news: List[News] = []
        for destination, destination_log in logs:
            try:
                destination_log.sync_progress()  # durable before any segment it passed is deleted
                freed = destination_log.remove_delivered()
                removed = destination_log.drained
                if removed:
                    freed += self._lane.drop(destination)
            except OSError as exc:
                log.error("spool of sink %r: cannot remove delivered records: %s", self._lane.sink_name, exc)
                continue
            if freed or removed:
                news.append(Freed(destination, freed, removed))
        return news

    def _read(self, read: Read) -> ReadBack:
        destination_log = self._lane.logs.get(read.destination)
        if destination_log is None:
            return ReadBack(read, [], 0, None)
        try:
            records, damaged = destination_log.read(read.max_records, read.max_bytes)
        except OSError as exc:
            return ReadBack(read, [], 0, exc)
        return ReadBack(read, records, damaged, None)
