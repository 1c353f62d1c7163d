"""A sink that keeps what it got, in memory: for tests and dry runs.

Options (YAML ``sinks.<name>``, beside ``type: memory``):

- ``max_records`` (default 10000): how many of the latest records it keeps.
- ``delay`` (default 0): seconds each send takes, to play a slow broker.

Example::

    sinks:
      scratch: {type: memory, max_records: 100}

Tests assert on ``sink.records`` instead of mocking a broker, and can set
``sink.failure`` to an exception that every ``send`` then raises.
"""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple

from voluptuous import All, Coerce, Optional as Opt, Range, Schema

from sinks.base import Receipt, Record, Sink
from sinks.health import Health
from sinks.validation import SECONDS


class MemorySink(Sink):
    type_name = "memory"
    OPTIONS = Schema(
        {
            Opt("max_records", default=10000): All(Coerce(int), Range(min=1), msg="expected a positive number"),
            Opt("delay", default=0.0): SECONDS,
        }
    )

    def __init__(self, name: str, options: Mapping[str, Any]):
        super().__init__(name, options)
        self.records: Deque[Tuple[str, Record]] = collections.deque(maxlen=options["max_records"])
        self.delay: float = options["delay"]
        self.failure: Optional[BaseException] = None
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def send(self, destination: str, record: Record) -> Optional[Receipt]:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        self.records.append((destination, record))
        return None

    def documents(self, destination: Optional[str] = None) -> List[Dict[str, Any]]:
        """The records received (for ``destination``, if given), decoded."""
        return [json.loads(r.value) for d, r in self.records if destination in (None, d)]

    def health(self) -> Health:
        error = "closed" if self.closed else None if self.failure is None else str(self.failure) or "failing"
        return Health(up=error is None, error=error, details={"records": len(self.records)})

    async def close(self) -> None:
        self.closed = True
