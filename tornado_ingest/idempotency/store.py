"""What an idempotency store does: reserve a key for one request, then remember its answer or let it go.

A key is one dataset's msgid. Its value is a digest of the request's data and,
once answered 200, that answer's ``resmsgid``; never the data itself. Every
operation is atomic in the store, so two requests (two processes, two
replicas) can never both reserve the same key.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, NamedTuple, Optional

from sinks.health import Health


class StoreUnavailable(Exception):
    """The store cannot be reached (or did not answer in time)."""


class Held(NamedTuple):
    """What holds a key already: the digest of its request's data, and its answer's resmsgid once answered."""

    digest: str
    resmsgid: Optional[str]  # None while that request is in flight


def new_token() -> str:
    """Who reserved a key: only that request may settle it."""
    return uuid.uuid4().hex


class IdempotencyStore:
    """Base class; ``MemoryStore`` and ``RedisStore`` implement it. Every method raises ``StoreUnavailable``."""

    kind = "?"

    async def start(self) -> None:
        """Connect, if there is anything to connect to; never raises (``health`` says)."""

    async def close(self) -> None:
        """Let the connections go."""

    async def claim(self, key: str, digest: str, token: str, in_flight_ttl: float) -> Optional[Held]:
        """Reserve ``key`` for the request ``token`` and return None; or return what holds it already."""
        raise NotImplementedError

    async def wait_for_change(self, key: str, timeout: float, waited: float) -> None:
        """Return when the request holding ``key`` may have settled it (at the latest after ``timeout``).

        ``waited``: how long this request has waited for it so far."""
        raise NotImplementedError

    async def answer(self, key: str, digest: str, token: str, resmsgid: str, window: float) -> None:
        """The request ``token`` got its 200: remember ``resmsgid`` for ``window`` seconds."""
        raise NotImplementedError

    async def release(self, key: str, digest: str, token: str) -> None:
        """The request ``token`` did not get a 200: its retry is a new attempt."""
        raise NotImplementedError

    def health(self) -> Health:
        raise NotImplementedError

    def details(self) -> Dict[str, Any]:
        """JSON-able facts for ``/health`` (never a password)."""
        return {}
