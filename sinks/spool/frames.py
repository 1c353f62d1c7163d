"""One spooled record as bytes on disk, and the scan that finds records again, damage and all.

A frame::

    magic    4 bytes   b"TIs\\x01"
    length   4 bytes   payload length, unsigned big-endian
    crc      4 bytes   zlib.crc32 of the length's 4 bytes and the payload
    payload  length bytes:
        written_ms  8   when it was spooled (wall clock, ms): the oldest record's age
        destination 2 + n bytes (length-prefixed UTF-8)
        key         4 + n bytes (0xFFFFFFFF: no key)
        headers     2 bytes count, then each: 2 + n name (UTF-8), 4 + n value
        value       the rest

The checksum is zlib's CRC-32, always: it is in every Python, so a spool
written by one install reads on any other (crc32c would be faster, and would
make the files depend on an optional package). The magic lets a scan find the
next record after a damaged one; the checksum covers the length, so a flipped
length is caught like a flipped payload byte.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

from sinks.base import Record

MAGIC = b"TIs\x01"
HEADER = struct.Struct(">4sII")
HEADER_BYTES = HEADER.size
#: a length field above this is damage, not a record (records are capped far below by max_body_bytes).
MAX_PAYLOAD_BYTES = 1 << 30
NO_KEY = 0xFFFFFFFF

_WRITTEN = struct.Struct(">Q")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_LENGTH = struct.Struct(">I")


class SpooledRecord(Record):
    """A record read back from the spool: the same value, key and headers as when it was spooled."""

    __slots__ = ("_headers",)

    def __init__(self, value: bytes, headers: List[Tuple[str, bytes]], key: Optional[bytes] = None):
        named = dict(headers)
        dataset, msgid = (named.get(name, b"").decode("utf-8", "replace") for name in ("dataset", "msgid"))
        super().__init__(value, dataset=dataset, msgid=msgid, key=key)
        self._headers = headers

    @property
    def headers(self) -> List[Tuple[str, bytes]]:
        return self._headers

    @property
    def header_texts(self) -> Dict[str, str]:
        """The same headers as text, as AMQP carries them."""
        return {name: value.decode("utf-8", "replace") for name, value in self._headers}


class Entry(NamedTuple):
    """A frame's payload, decoded."""

    destination: str
    record: Record
    written_ms: int


def encode(destination: str, record: Record, written_ms: int) -> bytes:
    """The frame of one record for ``destination``."""
    name = destination.encode("utf-8")
    parts = [_WRITTEN.pack(written_ms), _U16.pack(len(name)), name]
    key = record.key
    parts += [_U32.pack(NO_KEY)] if key is None else [_U32.pack(len(key)), key]
    headers = record.headers
    parts.append(_U16.pack(len(headers)))
    for header, value in headers:
        encoded = header.encode("utf-8")
        parts += [_U16.pack(len(encoded)), encoded, _U32.pack(len(value)), value]
    parts.append(record.value)
    payload = b"".join(parts)
    length = _LENGTH.pack(len(payload))
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload, zlib.crc32(length))) + payload


def decode(payload: bytes) -> Entry:
    """A payload whose checksum held; ``ValueError`` if its fields do not add up."""
    try:
        view = memoryview(payload)
        (written_ms,) = _WRITTEN.unpack_from(view, 0)
        at = _WRITTEN.size
        destination, at = _text(view, at, _U16)
        (key_length,) = _U32.unpack_from(view, at)
        at += 4
        key = None
        if key_length != NO_KEY:
            key, at = _take(view, at, key_length), at + key_length
        (count,) = _U16.unpack_from(view, at)
        at += 2
        headers = []
        for _ in range(count):
            name, at = _text(view, at, _U16)
            (length,) = _U32.unpack_from(view, at)
            headers.append((name, _take(view, at + 4, length)))
            at += 4 + length
        return Entry(destination, SpooledRecord(bytes(view[at:]), headers, key), written_ms)
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError("a spool record whose fields do not add up: %s" % exc) from None


def _take(view: memoryview, at: int, length: int) -> bytes:
    if at + length > len(view):
        raise struct.error("a field runs past the record's end")
    return bytes(view[at : at + length])


def _text(view: memoryview, at: int, size: struct.Struct) -> Tuple[str, int]:
    (length,) = size.unpack_from(view, at)
    return _take(view, at + size.size, length).decode("utf-8"), at + size.size + length


# -- scanning a file -----------------------------------------------------------------


class Frame(NamedTuple):
    """A sound record at ``[start, end)``."""

    start: int
    end: int
    payload: bytes


class Damage(NamedTuple):
    """Bytes ``[start, end)`` that are no record. ``tail``: nothing sound follows them (a torn write)."""

    start: int
    end: int
    tail: bool


#: ``read(offset, count)``: up to ``count`` bytes of the file at ``offset`` (``os.pread``).
Read = Callable[[int, int], bytes]

CHUNK = 1 << 20


def reader(fd: int) -> Read:
    """``Read`` over an open file: ``os.pread``."""
    return lambda offset, count: os.pread(fd, count, offset)


class _Window:
    """Reads a file through one chunk-sized buffer: memory stays one chunk (plus the record being read)."""

    def __init__(self, read: Read) -> None:
        self._read = read
        self._start = 0
        self._data = b""

    def get(self, offset: int, count: int) -> bytes:
        end = offset + count
        if not (self._start <= offset and end <= self._start + len(self._data)):
            if count > CHUNK:
                return self._read(offset, count)
            self._start, self._data = offset, self._read(offset, CHUNK)
        return self._data[offset - self._start : end - self._start]

    def find(self, offset: int, size: int) -> int:
        """The offset of the next magic at or after ``offset`` (and before ``size``), or -1."""
        while offset < size:
            chunk = self.get(offset, min(CHUNK, size - offset))
            found = chunk.find(MAGIC)
            if found >= 0:
                return offset + found
            if offset + len(chunk) >= size:
                return -1
            offset += len(chunk) - len(MAGIC) + 1
        return -1


def _sound_frame(window: _Window, start: int, size: int) -> Optional[Frame]:
    head = window.get(start, HEADER_BYTES)
    if len(head) < HEADER_BYTES:
        return None
    magic, length, crc = HEADER.unpack(head)
    end = start + HEADER_BYTES + length
    if magic != MAGIC or length > MAX_PAYLOAD_BYTES or end > size:
        return None
    payload = window.get(start + HEADER_BYTES, length)
    if len(payload) != length or zlib.crc32(payload, zlib.crc32(head[4:8])) != crc:
        return None
    return Frame(start, end, payload)


def scan(read: Read, start: int, size: int) -> Iterator[Union[Frame, Damage]]:
    """Every frame of a file from ``start`` to ``size``, and every stretch of damage between them.

    After damage the scan looks for the next magic that begins a sound frame;
    damage with nothing sound after it is the tail (what a crash mid-write leaves).
    """
    window = _Window(read)
    at = start
    while at < size:
        frame = _sound_frame(window, at, size)
        if frame is not None:
            yield frame
            at = frame.end
            continue
        resume = window.find(at + 1, size)
        while resume >= 0 and _sound_frame(window, resume, size) is None:
            resume = window.find(resume + 1, size)
        if resume < 0:
            yield Damage(at, size, tail=True)
            return
        yield Damage(at, resume, tail=False)
        at = resume
