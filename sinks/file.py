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
A file moved away (log rotation) is noticed and a new one is started.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import queue
import re
import threading
from typing import Any, Dict, List, Optional, Tuple

from voluptuous import All, Boolean, Length, Required, Schema

from sinks.base import STATE_DOWN, STATE_UP, Record, Sink, SinkUnavailable

log = logging.getLogger(__name__)

PLAIN_FILE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
SUFFIX = ".jsonl"

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)

_Pending = Tuple[str, bytes, "asyncio.Future[None]"]


class FileSink(Sink):
    type_name = "file"
    OPTIONS = Schema(
        {
            Required("directory"): All(str, Length(min=1), msg="expected a directory path"),
            "fsync": Boolean(),
        }
    )

    def __init__(self, name: str, options: Dict[str, Any]):
        super().__init__(name, options)
        self.directory = os.path.abspath(options["directory"])
        self.fsync = options.get("fsync", False)
        self._writer: Optional[_AppendWriter] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self.last_error: Optional[str] = None

    @classmethod
    def check_destination(cls, options: Dict[str, Any], destination: str) -> None:
        if not PLAIN_FILE_NAME.match(destination) or destination in (".", ".."):
            raise ValueError(
                "%r is not a plain file name (letters, digits, '.', '_', '-'): "
                "a file destination may not leave its directory" % destination
            )

    def path_for(self, destination: str) -> str:
        return os.path.join(self.directory, destination + SUFFIX)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            self._failed(exc)
            log.error("file sink %r: cannot create %s: %s", self.name, self.directory, exc.strerror)
        self._writer = _AppendWriter(self, name="file-sink-%s" % self.name)
        self._writer.start()

    async def send(self, destination: str, record: Record) -> None:
        writer = self._writer
        if writer is None or writer.closing:
            raise SinkUnavailable("file sink %r is not running" % self.name)
        future = self._loop.create_future()
        writer.submit(destination, record.value + b"\n", future)
        await future

    def health(self) -> Dict[str, Any]:
        writable = os.access(self.directory, os.W_OK | os.X_OK)
        up = writable and self.last_error is None and self._writer is not None and not self._writer.closing
        report = {"type": self.type_name, "state": STATE_UP if up else STATE_DOWN, "directory": self.directory}
        if self.last_error is not None:
            report["error"] = self.last_error
        elif not writable:
            report["error"] = "directory is not writable"
        return report

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.closing = True
            writer.submit_stop()
            await asyncio.get_running_loop().run_in_executor(None, writer.join)

    # Called on the loop by the writer thread, once per batch.
    def _settle(self, outcomes: List[Tuple[List["asyncio.Future[None]"], Optional[OSError]]]) -> None:
        for futures, error in outcomes:
            if error is None:
                self.last_error = None
                for future in futures:
                    if not future.done():
                        future.set_result(None)
            else:
                self._failed(error)
                for future in futures:
                    if not future.done():
                        future.set_exception(SinkUnavailable("file sink %r: %s" % (self.name, self.last_error)))

    def _failed(self, error: OSError) -> None:
        self.last_error = "%s (%s)" % (error.strerror or error, errno.errorcode.get(error.errno or 0, "?"))


class _AppendWriter(threading.Thread):
    """Drains the sink's queue, appending each destination's lines in one write."""

    def __init__(self, sink: FileSink, name: str):
        super().__init__(name=name, daemon=True)
        self.sink = sink
        self.closing = False
        self._queue: "queue.SimpleQueue[Optional[List[_Pending]]]" = queue.SimpleQueue()
        self._gathered: Optional[List[_Pending]] = None
        self._files: Dict[str, Tuple[int, int]] = {}

    def submit(self, destination: str, line: bytes, future: "asyncio.Future[None]") -> None:
        """On the loop: gather this loop iteration's lines, hand them over in one go."""
        if self._gathered is None:
            self._gathered = []
            self.sink._loop.call_soon(self._hand_over)
        self._gathered.append((destination, line, future))

    def _hand_over(self) -> None:
        gathered, self._gathered = self._gathered, None
        if gathered:
            self._queue.put(gathered)

    def submit_stop(self) -> None:
        self._hand_over()
        self._queue.put(None)

    def run(self) -> None:
        stop = False
        while not stop:
            batch: List[_Pending] = []
            handed = self._queue.get()
            while handed is not None:
                batch += handed
                try:
                    handed = self._queue.get_nowait()
                except queue.Empty:
                    break
            else:
                stop = True
            if batch:
                self._write_batch(batch)
        for fd, _ in self._files.values():
            os.close(fd)
        self._files.clear()

    def _write_batch(self, batch: List[_Pending]) -> None:
        grouped: Dict[str, Tuple[List[bytes], List["asyncio.Future[None]"]]] = {}
        for destination, line, future in batch:
            lines, futures = grouped.setdefault(destination, ([], []))
            lines.append(line)
            futures.append(future)
        outcomes = []
        for destination, (lines, futures) in grouped.items():
            try:
                self._append(destination, b"".join(lines))
                outcomes.append((futures, None))
            except OSError as exc:
                self._forget(destination)
                outcomes.append((futures, exc))
        self.sink._loop.call_soon_threadsafe(self.sink._settle, outcomes)

    def _append(self, destination: str, data: bytes) -> None:
        fd = self._open(destination)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.sink.fsync:
                    os.fsync(fd)
            except OSError:
                _truncate_quietly(fd, start)
                raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self, destination: str) -> int:
        path = self.sink.path_for(destination)
        cached = self._files.get(destination)
        if cached is not None:
            fd, inode = cached
            try:
                if os.stat(path, follow_symlinks=False).st_ino == inode:
                    return fd
            except FileNotFoundError:
                pass
            self._forget(destination)  # rotated or removed: start a new file
        os.makedirs(self.sink.directory, exist_ok=True)
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


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError as exc:  # pragma: no cover - nothing better to do than say so
        log.error("file sink: could not remove a partial write: %s", exc)
