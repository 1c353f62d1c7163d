"""File-system steps that must survive a crash: whole writes, synced directories, directories made durably."""

from __future__ import annotations

import os


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def sync_directory(path: str) -> None:
    """Make the directory's entries (files created, renamed or removed in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directory(path: str) -> None:
    """Create ``path`` and its missing parents, each made durable in its parent."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    make_directory(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    sync_directory(parent)


def copy_range(source: str, start: int, end: int, target: str) -> None:
    """Copy bytes ``[start, end)`` of ``source`` into a new file ``target``, synced, a chunk at a time."""
    with open(source, "rb") as reading, open(target, "xb") as writing:
        reading.seek(start)
        left = end - start
        while left > 0:
            chunk = reading.read(min(left, 1 << 20))
            if not chunk:
                break
            writing.write(chunk)
            left -= len(chunk)
        writing.flush()
        os.fsync(writing.fileno())
