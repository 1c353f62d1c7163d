"""HTTP/1.1 over a bare socket: bytes exactly as written (no client adds or fixes a header)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional


@dataclass
class RawResponse:
    status: int
    headers: Dict[str, str]  # names lower-cased
    body: bytes

    @property
    def envelope(self) -> Dict[str, Any]:
        assert self.headers["content-type"].startswith("application/json"), self.headers
        return json.loads(self.body)


async def read_response(reader: asyncio.StreamReader) -> Optional[RawResponse]:
    """One response from the stream; None if the server closed it first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return RawResponse(int(lines[0].split(" ", 2)[1]), headers, await reader.readexactly(length))


async def exchange(port: int, request: bytes, timeout: float = 5.0) -> RawResponse:
    """Send ``request`` on a new connection; the first response to it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        response = await asyncio.wait_for(read_response(reader), timeout)
        assert response is not None, "the server closed the connection without an answer"
        return response
    finally:
        writer.close()


def post_bytes(path: str, body: bytes, *headers: str) -> bytes:
    """A POST with the given extra header lines (and a Content-Length unless one is given)."""
    lines = ["POST %s HTTP/1.1" % path, "Host: x", "Content-Type: application/json", *headers]
    if not any(re.match(r"(?i)(content-length|transfer-encoding):", line) for line in headers):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
