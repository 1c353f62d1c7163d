"""A sink for tests of partial failures: a memory sink that refuses every n-th record."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from voluptuous import All, Coerce, Optional as Opt, Range

from sinks.base import Receipt, Record, SinkUnavailable
from sinks.memory import MemorySink


class FlakySink(MemorySink):
    """``fail_every: n``: records n, 2n, 3n, ... are refused (503); the others are kept, as the memory sink does."""

    type_name = "flaky"
    OPTIONS = MemorySink.OPTIONS.extend({Opt("fail_every", default=2): All(Coerce(int), Range(min=1))})

    def __init__(self, name: str, options: Mapping[str, Any]):
        super().__init__(name, options)
        self.fail_every: int = options["fail_every"]
        self.seen = 0

    async def send(self, destination: str, record: Record) -> Optional[Receipt]:
        self.seen += 1
        if self.seen % self.fail_every == 0:
            raise SinkUnavailable("refused record %d (fail_every: %d)" % (self.seen, self.fail_every))
        return await super().send(destination, record)
