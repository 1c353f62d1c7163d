"""Append records as JSON lines to ``<directory>/<entry_topic>.jsonl``.

Options (YAML ``sinks.<name>``, beside ``type: file``):

- ``directory`` (required): where the files go; a relative path is relative to
  the working directory at start. Created if missing.
- ``fsync`` (default ``false``): ``true`` makes every write reach the disk
  before the client gets its 200, not only the operating system.

Example::

    sinks:
      local: {type: file, directory: /var/lib/ingest, fsync: true}
    datasets:
      example: {sink: local, entry_topic: example}   # -> /var/lib/ingest/example.jsonl

One writer thread per sink does all the disk work, so the IOLoop never waits on
the disk; the lines of one loop iteration are handed to it together, and the
records that arrive together are appended in one ``write`` under an
exclusive ``flock`` (group commit): lines never interleave, also across
processes, and a failed write is truncated away so no line is ever torn.
A file moved away (log rotation) is noticed and a new one is started. A write
that fails is followed by a probe of the directory: a full or read-only disk
takes the sink down (and is probed every second until it takes writes again, so
readiness comes back without traffic); one destination's own trouble (a
symbolic link, a directory in the way) refuses that destination only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import itertools
import logging
import os
import re
import threading
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from voluptuous import All, Boolean, Length, Optional as Opt, Required, Schema

from sinks.base import Receipt, Record, Sink, SinkUnavailable
from sinks.handoff import BatchQueue, LoopInbox, settle
from sinks.health import Health, HealthState

log = logging.getLogger(__name__)

PLAIN_FILE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
SUFFIX = ".jsonl"

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class _Line(NamedTuple):
    destination: str
    data: bytes
    future: "asyncio.Future[Optional[Receipt]]"


class _Written(NamedTuple):
    """The lines of one destination are in its file: where, and each line's byte offset (for the receipts)."""

    futures: List["asyncio.Future[Optional[Receipt]]"]
    path: str
    offsets: List[int]


class _Refused(NamedTuple):
    """The lines of one destination could not be written; ``whole_sink``: the directory takes no write at all
    (disk full, read-only), else only this destination is refused (a symbolic link, a directory in the way)."""

    futures: List["asyncio.Future[Optional[Receipt]]"]
    destination: str
    error: OSError
    whole_sink: bool


class _DirectoryBack(NamedTuple):
    """The directory takes writes again (found by the writer's probe, with no traffic needed)."""


_News = Union[_Written, _Refused, _DirectoryBack]

#: seconds between probes of the directory while it takes no write.
PROBE_INTERVAL = 1.0


class FileSink(Sink):
    type_name = "file"
    OPTIONS = Schema(
        {
            Required("directory"): All(str, Length(min=1), msg="expected a directory path"),
            Opt("fsync", default=False): Boolean(),
        }
    )

    def __init__(self, name: str, options: Mapping[str, Any]):
        super().__init__(name, options)
        self.directory = os.path.abspath(options["directory"])
        self.fsync: bool = options["fsync"]
        self.state = HealthState()
        self._lines: Optional[BatchQueue[_Line]] = None
        self._inbox: Optional[LoopInbox[_News]] = None
        self._writer: Optional[_AppendWriter] = None

    @classmethod
    def check_destination(cls, options: Dict[str, Any], destination: str) -> None:
        if not PLAIN_FILE_NAME.match(destination) or destination in (".", ".."):
            raise ValueError(
                "%r is not a plain file name (letters, digits, '.', '_', '-'): "
                "a file destination may not leave its directory" % destination
            )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            os.makedirs(self.directory, exist_ok=True)
            self.state.mark_up()
        except OSError as exc:
            self.state.mark_down(_describe(exc))
            log.error("file sink %r: cannot create %s: %s", self.name, self.directory, exc.strerror)
        self._lines = BatchQueue(loop)
        self._inbox = LoopInbox(loop, self._take_news)
        self._writer = _AppendWriter(
            self.directory, self.fsync, self._lines, self._inbox, name="file-sink-%s" % self.name
        )
        self._writer.start()

    async def send(self, destination: str, record: Record) -> Optional[Receipt]:
        lines = self._lines
        if lines is None or lines.closed:
            raise SinkUnavailable("file sink %r is not running" % self.name)
        future: "asyncio.Future[Optional[Receipt]]" = asyncio.get_running_loop().create_future()
        lines.submit(_Line(destination, record.value + b"\n", future))
        return await future

    def health(self) -> Health:
        if self._lines is None or self._lines.closed:
            return Health(up=False, error="not started" if self._lines is None else "closed")
        if self.state.up and not os.access(self.directory, os.W_OK | os.X_OK):
            return Health(up=False, error="directory is not writable", details={"directory": self.directory})
        return self.state.snapshot(directory=self.directory)

    async def close(self) -> None:
        lines, writer, inbox = self._lines, self._writer, self._inbox
        if lines is None or writer is None or inbox is None or lines.closed:
            return
        lines.close()
        await asyncio.get_running_loop().run_in_executor(None, writer.join)
        inbox.deliver()  # the last outcomes, before close returns

    def _take_news(self, news: List[_News]) -> None:
        """On the loop: what the writer thread did, one item per destination and batch, or its probe's verdict."""
        for item in news:
            if isinstance(item, _Refused):
                self._refused(item)
                continue
            if self.state.mark_up():
                log.info("file sink %r is up: %s takes writes", self.name, self.directory)
            if isinstance(item, _Written):
                for future, offset in zip(item.futures, item.offsets):
                    settle(future, result=Receipt(where={"path": item.path, "offset": offset}))

    def _refused(self, refused: _Refused) -> None:
        reason = _describe(refused.error)
        if refused.whole_sink:
            if self.state.mark_down(reason):
                log.warning("file sink %r is down: %s", self.name, reason)
            failure = SinkUnavailable("file sink %r: %s" % (self.name, reason))
        else:  # one destination's trouble is not the sink's: the others go on, and /ready stays 200
            where = refused.destination + SUFFIX
            failure = SinkUnavailable("file sink %r cannot write %s: %s" % (self.name, where, reason))
        for future in refused.futures:
            settle(future, failure)


def _describe(error: OSError) -> str:
    return "%s (%s)" % (error.strerror or error, errno.errorcode.get(error.errno or 0, "?"))


class _AppendWriter(threading.Thread):
    """Takes the loop's batches of lines and appends each destination's lines in one write."""

    def __init__(self, directory: str, fsync: bool, lines: BatchQueue[_Line], news: LoopInbox[_News], name: str):
        super().__init__(name=name, daemon=True)
        self.directory = directory
        self.fsync = fsync
        self._lines = lines
        self._news = news
        self._files: Dict[str, Tuple[int, int]] = {}  # destination -> (fd, inode)
        self._paths: Dict[str, str] = {}  # destination -> its file's path (joined once, not twice per write)
        self._directory_down = False  # while True, the directory is probed every PROBE_INTERVAL

    def run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._lines.take(PROBE_INTERVAL if self._directory_down else None)
            if batch:
                self._write_batch(batch)
            elif self._directory_down and directory_problem(self.directory) is None:
                self._directory_down = False
                self._news.post(_DirectoryBack())
        for fd, _ in self._files.values():
            os.close(fd)
        self._files.clear()

    def _write_batch(self, batch: List[_Line]) -> None:
        grouped: Dict[str, Tuple[List[bytes], List["asyncio.Future[Optional[Receipt]]"]]] = {}
        for destination, data, future in batch:
            lines, futures = grouped.setdefault(destination, ([], []))
            lines.append(data)
            futures.append(future)
        news: List[_News] = []
        for destination, (lines, futures) in grouped.items():
            try:
                start = self._append(destination, b"".join(lines))
                self._directory_down = False
                offsets = list(itertools.accumulate((len(line) for line in lines[:-1]), initial=start))
                news.append(_Written(futures, self._path(destination), offsets))
            except OSError as exc:
                self._forget(destination)
                if directory_problem(self.directory) is not None:
                    self._directory_down = True
                news.append(_Refused(futures, destination, exc, whole_sink=self._directory_down))
        self._news.post_all(news)

    def _append(self, destination: str, data: bytes) -> int:
        """Append ``data`` to the destination's file in one write, under its lock; the byte offset it starts at."""
        fd = self._open(destination)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                _truncate_quietly(fd, start)
                raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return start

    def _path(self, destination: str) -> str:
        path = self._paths.get(destination)
        if path is None:
            path = self._paths[destination] = os.path.join(self.directory, destination + SUFFIX)
        return path

    def _open(self, destination: str) -> int:
        path = self._path(destination)
        cached = self._files.get(destination)
        if cached is not None:
            fd, inode = cached
            try:
                if os.stat(path, follow_symlinks=False).st_ino == inode:
                    return fd
            except FileNotFoundError:
                pass
            self._forget(destination)  # rotated or removed: start a new file
        os.makedirs(self.directory, exist_ok=True)
        try:
            fd = os.open(path, _OPEN_FLAGS, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OSError(errno.ELOOP, "refusing to follow a symbolic link at %s" % path) from None
            raise
        self._files[destination] = (fd, os.fstat(fd).st_ino)
        return fd

    def _forget(self, destination: str) -> None:
        cached = self._files.pop(destination, None)
        if cached is not None:
            try:
                os.close(cached[0])
            except OSError:
                pass


def directory_problem(directory: str) -> Optional[OSError]:
    """What keeps ``directory`` from taking a write, or None: a small file is written, synced and removed.

    Tells a full or read-only disk (the sink is down) from one destination's own trouble (it is not).
    """
    path = os.path.join(directory, ".tornado-ingest-probe-%d" % os.getpid())
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, b"\n")
            os.fsync(fd)  # a full disk may take the write and refuse the blocks only now
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
        return None
    except OSError as exc:
        return exc


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError as exc:  # pragma: no cover - nothing better to do than say so
        log.error("file sink: could not remove a partial write: %s", exc)
