"""The shared store (``store: redis``): one window for every process and replica that uses the same Redis.

Each key holds ``P|<digest>|<token>`` while its request is in flight, then
``D|<digest>|<resmsgid>`` once it was answered 200. Three small Lua scripts
make each step atomic in Redis:

- claim: if the key holds something, return it; else write the pending marker
  with an expiry of ``in_flight_ttl`` (a replica that dies with a request in
  flight leaves a marker that expires; its retries wait for that at most);
- answer: replace our own pending marker (or nothing, if it expired) by the
  answer, expiring after ``window``; never someone else's marker;
- release: delete our own pending marker, and nothing else.

Redis is asked with redis-py's asyncio client, never blocking the loop; a
call slower than ``timeout`` or a refused connection is ``StoreUnavailable``,
and for the next second every request is answered so at once instead of
waiting on Redis again (``DOWN_FOR``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional

# Imported only for a dataset with store: redis, which the config refuses without the package.
import redis.asyncio as redis_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sinks.health import Health, HealthState
from sinks.redact import redact
from tornado_ingest.idempotency.store import Held, IdempotencyStore, StoreUnavailable

log = logging.getLogger(__name__)

#: connections to Redis per process, at most: requests beyond wait for one (up to ``timeout``)
MAX_CONNECTIONS = 32
#: seconds a store found down answers StoreUnavailable at once, before Redis is asked again
DOWN_FOR = 1.0
#: seconds between two looks at a key whose request is in flight elsewhere: the first, and the longest
FIRST_POLL, LONGEST_POLL = 0.01, 0.2

CLAIM = """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
ANSWER = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisStore(IdempotencyStore):
    kind = "redis"

    def __init__(self, url: str, timeout: float) -> None:
        self.redacted_url = redact(url)
        self.timeout = timeout
        self.state = HealthState("not connected yet")
        pool = redis_asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,  # waiting for a free connection counts as Redis being slow
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # one attempt: a request never waits on reconnects
            decode_responses=True,
        )
        self._client: Any = redis_asyncio.Redis(connection_pool=pool)
        self._claim = self._client.register_script(CLAIM)
        self._answer = self._client.register_script(ANSWER)
        self._release = self._client.register_script(RELEASE)
        self._down_until = 0.0

    async def start(self) -> None:
        try:
            await self._call(self._client.ping())
        except StoreUnavailable:
            pass  # logged; every request will try again

    async def close(self) -> None:
        close = getattr(self._client, "aclose", None) or self._client.close  # aclose: redis-py 5 and later
        await close()
        await self._client.connection_pool.disconnect()  # a client given a pool leaves it open

    async def claim(self, key: str, digest: str, token: str, in_flight_ttl: float) -> Optional[Held]:
        held = await self._call(
            self._claim(keys=[key], args=["P|%s|%s" % (digest, token), _milliseconds(in_flight_ttl)])
        )
        if held is None:
            return None
        state, held_digest, rest = held.split("|", 2)
        return Held(held_digest, rest if state == "D" else None)

    async def wait_for_change(self, key: str, timeout: float, waited: float) -> None:
        """Redis says nothing when a key changes: look again after a pause, longer the longer it has been."""
        await asyncio.sleep(min(max(FIRST_POLL, waited / 2), LONGEST_POLL, timeout))

    async def answer(self, key: str, digest: str, token: str, resmsgid: str, window: float) -> None:
        pending, done = "P|%s|%s" % (digest, token), "D|%s|%s" % (digest, resmsgid)
        if not await self._call(self._answer(keys=[key], args=[pending, done, _milliseconds(window)])):
            log.warning("idempotency key %s was taken over while its request was in flight (in_flight_ttl)", key)

    async def release(self, key: str, digest: str, token: str) -> None:
        await self._call(self._release(keys=[key], args=["P|%s|%s" % (digest, token)]))

    def health(self) -> Health:
        return self.state.snapshot()

    def details(self) -> Dict[str, Any]:
        return {"url": self.redacted_url}

    async def _call(self, call: Any) -> Any:
        """Await one Redis call, bounded by ``timeout``; any failure is ``StoreUnavailable`` (and logged once)."""
        if time.monotonic() < self._down_until:
            call.close()
            raise StoreUnavailable(self.state.error or "Redis is down")
        try:
            result = await asyncio.wait_for(call, self.timeout)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            reason = "Redis at %s: %s" % (self.redacted_url, redact(str(exc) or type(exc).__name__))
            self._down_until = time.monotonic() + DOWN_FOR
            if self.state.mark_down(reason):
                log.warning("idempotency store is down: %s", reason)
            raise StoreUnavailable(reason) from None
        if self.state.mark_up():
            log.info("idempotency store is up: Redis at %s", self.redacted_url)
        return result
