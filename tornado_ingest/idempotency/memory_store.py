"""The in-process store (``store: memory``, the default): one dataset's answers, in this process only.

Bounded: at most ``max_keys`` answers are kept; past that the oldest are
forgotten first, before their window ends (counted in ``evicted``), so a retry
of such a msgid is written again. Every answer has the same window, so the
oldest is also the first to expire, and both are found at the front of one
ordered dict. Keys in flight are not counted in ``max_keys``: there are no
more of them than requests in flight (``max_inflight``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any, Dict, NamedTuple, Optional

from sinks.handoff import settle
from sinks.health import Health
from tornado_ingest.idempotency.store import Held, IdempotencyStore


class _Answer(NamedTuple):
    digest: str
    resmsgid: str
    expires: float  # time.monotonic()


class _InFlight(NamedTuple):
    digest: str
    token: str
    settled: "asyncio.Future[None]"  # resolved when the request answers or lets go


class MemoryStore(IdempotencyStore):
    kind = "memory"

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.evicted = 0
        self._answers: "collections.OrderedDict[str, _Answer]" = collections.OrderedDict()
        self._in_flight: Dict[str, _InFlight] = {}

    async def claim(self, key: str, digest: str, token: str, in_flight_ttl: float) -> Optional[Held]:
        in_flight = self._in_flight.get(key)
        if in_flight is not None:
            return Held(in_flight.digest, None)
        self._forget_expired()
        answer = self._answers.get(key)
        if answer is not None:
            return Held(answer.digest, answer.resmsgid)
        self._in_flight[key] = _InFlight(digest, token, asyncio.get_running_loop().create_future())
        return None

    async def wait_for_change(self, key: str, timeout: float, waited: float) -> None:
        in_flight = self._in_flight.get(key)
        if in_flight is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(in_flight.settled), timeout)

    async def answer(self, key: str, digest: str, token: str, resmsgid: str, window: float) -> None:
        if self._settle(key, token):
            self._answers.pop(key, None)
            self._answers[key] = _Answer(digest, resmsgid, time.monotonic() + window)
            while len(self._answers) > self.max_keys:
                self._answers.popitem(last=False)
                self.evicted += 1

    async def release(self, key: str, digest: str, token: str) -> None:
        self._settle(key, token)

    def health(self) -> Health:
        return Health(up=True)

    def details(self) -> Dict[str, Any]:
        self._forget_expired()
        return {"keys": len(self._answers), "max_keys": self.max_keys, "evicted": self.evicted}

    def _settle(self, key: str, token: str) -> bool:
        in_flight = self._in_flight.get(key)
        if in_flight is None or in_flight.token != token:
            return False
        del self._in_flight[key]
        settle(in_flight.settled)
        return True

    def _forget_expired(self) -> None:
        now = time.monotonic()
        answers = self._answers
        while answers and next(iter(answers.values())).expires <= now:
            answers.popitem(last=False)
