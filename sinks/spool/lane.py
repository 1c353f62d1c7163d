"""The part of a sink's spool directory one process owns: ``<directory>/<sink>/lane-<n>/``, held by a lock.

Each process takes the first lane no other process holds (an ``flock`` on
``lane-<n>/lock``, released by the kernel when the process dies, even by
``kill -9``), so the workers of ``server.processes`` never share files, and
a worker that died leaves its lane, records and all, to the next process that
starts. Inside, one directory per destination, ``to-<destination>`` (see
``segments``), and ``quarantine/`` (see ``quarantine``).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import urllib.parse
from typing import Dict, List, Optional

from sinks.spool.durable import make_directory
from sinks.spool.quarantine import Quarantine
from sinks.spool.segments import SEGMENT_BYTES, DestinationLog, Recovered

log = logging.getLogger(__name__)

LANE_PREFIX = "lane-"
#: a destination's directory is named ``to-<its name>``: never ``lock`` nor ``quarantine``.
DESTINATION_PREFIX = "to-"
LOCK_FILE = "lock"
MAX_LANES = 1024
#: directory names longer than this are shortened, and made unique by a digest of the whole name.
_LONGEST_NAME = 150


class LaneBusy(OSError):
    """Every lane is held by another process."""


def directory_name(name: str) -> str:
    """A file name that stands for ``name`` (a sink, a destination) and for nothing else."""
    quoted = urllib.parse.quote(name, safe="")
    if quoted.startswith("."):
        quoted = "%2E" + quoted[1:]
    if len(quoted) > _LONGEST_NAME:
        quoted = quoted[:100] + "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]
    return quoted or "%00"


class Lane:
    def __init__(self, root: str, sink_name: str, segment_bytes: int = SEGMENT_BYTES, sync_each: bool = False):
        self.root = root  # <directory>/<sink>
        self.sink_name = sink_name
        self.segment_bytes = segment_bytes
        self.sync_each = sync_each
        self.path = ""
        self.logs: Dict[str, DestinationLog] = {}
        self._lock_fd: Optional[int] = None
        self._quarantine: Optional[Quarantine] = None

    def take(self) -> str:
        """Lock the first lane no other process holds; its path."""
        make_directory(self.root)
        for number in range(MAX_LANES):
            path = os.path.join(self.root, "%s%d" % (LANE_PREFIX, number))
            make_directory(path)
            fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._lock_fd, self.path = fd, path
            self._quarantine = Quarantine(path, self.sink_name)
            return path
        raise LaneBusy("all %d lanes of %s are held by other processes" % (MAX_LANES, self.root))

    def recover(self) -> List[Recovered]:
        """Recover every destination's log: what each held (a log with nothing left to deliver is deleted)."""
        found = []
        for name in sorted(os.listdir(self.path)):
            path = os.path.join(self.path, name)
            if not name.startswith(DESTINATION_PREFIX) or not os.path.isdir(path):
                continue
            destination_log = self._new_log(path)
            recovered = destination_log.recover()
            if recovered.destination in self.logs:  # two directories for one destination: not made by this code
                destination_log.close()
                log.error(
                    "spool of sink %r: %s is left alone: another directory holds the records of %r",
                    self.sink_name,
                    path,
                    recovered.destination,
                )
                continue
            if recovered.destination is None or destination_log.drained:
                destination_log.remove()
                recovered = recovered._replace(records=0, bytes=0)
            else:
                self.logs[recovered.destination] = destination_log
            found.append(recovered)
        return found

    def log_for(self, destination: str) -> DestinationLog:
        destination_log = self.logs.get(destination)
        if destination_log is None:
            name = DESTINATION_PREFIX + directory_name(destination)
            destination_log = self._new_log(os.path.join(self.path, name))
            destination_log.destination = destination
            self.logs[destination] = destination_log
        return destination_log

    def drop(self, destination: str) -> int:
        """Delete a destination's log once all of it is delivered; the bytes freed."""
        destination_log = self.logs.pop(destination, None)
        return destination_log.remove() if destination_log is not None else 0

    def close(self) -> None:
        for destination_log in self.logs.values():
            destination_log.close()
        self.logs.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lane
            self._lock_fd = None

    def _new_log(self, path: str) -> DestinationLog:
        assert self._quarantine is not None, "take() a lane first"
        return DestinationLog(path, self._quarantine, self.segment_bytes, self.sync_each)
