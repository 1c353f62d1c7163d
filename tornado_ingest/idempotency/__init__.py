"""Retry-safe requests (``datasets.<id>.idempotency``): a msgid answered 200 gets that answer again, once written.

For a dataset that opts in, ``params.msgid`` is an idempotency key:

- a request whose msgid was answered 200 (or 202: spooled) within ``window``
  is answered so again with the first answer's ``resmsgid`` (and
  ``Idempotent-Replayed: true``), and nothing is written;
- one that arrives while the first is still in flight waits for its outcome
  (up to ``wait``; then 503 ``IDEMPOTENCY_KEY_IN_FLIGHT``, retry for the answer);
- the same msgid with other ``data`` is 409 ``IDEMPOTENCY_KEY_REUSED``. Only a
  digest of ``data`` is kept (canonical JSON: key order, spacing, ``ts`` and
  compression do not matter), never the data;
- a request that did not get a 200 or a 202 (4xx, 207, 503) is not
  remembered: its retry is a new attempt.

The handler's part is one ``async with idempotency.attempt(...)`` around the
delivery; the stores are in ``memory_store`` and ``redis_store``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Dict, Hashable, Iterable, Optional, Type

from tornado_ingest import jsoncodec
from tornado_ingest.config import Config
from tornado_ingest.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, IdempotencyStoreUnavailable
from tornado_ingest.idempotency.memory_store import MemoryStore
from tornado_ingest.idempotency.store import IdempotencyStore, StoreUnavailable, new_token
from tornado_ingest.metrics import Metrics
from tornado_ingest.settings import Dataset, Idempotency as IdempotencySettings

log = logging.getLogger(__name__)

#: the header of an answer given again
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PREFIX = "tornado-ingest:idempotency:"


def data_digest(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON: the same events give the same digest however they were written."""
    return hashlib.sha256(jsoncodec.canonical(data)).hexdigest()


def store_key(dataset_id: str, msgid: str) -> str:
    """The key of one dataset's msgid (hashed: a msgid may be long)."""
    return "%s%s:%s" % (KEY_PREFIX, dataset_id, hashlib.sha256(msgid.encode("utf-8", "surrogatepass")).hexdigest())


class Attempt:
    """One request's use of its msgid, as ``async with``: held, answered before, or not checked.

    ``first_resmsgid`` is the first answer's when the msgid was answered 200
    (or 202: spooled) before, and ``first_status`` that status (write nothing,
    answer that again). Otherwise deliver, then call ``answered(resmsgid,
    status)``; leaving the block without it lets the key go.
    """

    def __init__(self, gate: Optional["DatasetGate"], key: str = "", digest: str = "") -> None:
        self.first_resmsgid: Optional[str] = None
        self.first_status = 200
        self.key, self.digest = key, digest
        self._gate = gate
        self._token: Optional[str] = None  # set while this request holds the key
        self._resmsgid: Optional[str] = None

    def answered(self, resmsgid: str, status: int = 200) -> None:
        """A 200 or a 202: kept as the resmsgid, with the status before it when not 200 (``202 <resmsgid>``)."""
        self._resmsgid = resmsgid if status == 200 else "%d %s" % (status, resmsgid)

    def replay(self, answer: str) -> None:
        status, _, resmsgid = answer.rpartition(" ")
        self.first_status, self.first_resmsgid = int(status or 200), resmsgid

    async def __aenter__(self) -> "Attempt":
        if self._gate is not None:
            await self._gate.begin(self)
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], *_: Any) -> None:
        gate, token = self._gate, self._token
        if gate is None or token is None:
            return
        if exc_type is None and self._resmsgid is not None:
            await gate.remember(self.key, self.digest, token, self._resmsgid)
        else:
            await gate.let_go(self.key, self.digest, token)

    def hold(self, token: str) -> None:
        self._token = token


class DatasetGate:
    """One dataset's settings, its store, and what happened (counted for ``/health``)."""

    def __init__(self, dataset_id: str, settings: IdempotencySettings, store: IdempotencyStore, metrics: Metrics):
        self.dataset_id = dataset_id
        self.settings = settings
        self.store = store
        self.counts = {"replayed": 0, "conflicts": 0, "unchecked": 0, "refused": 0}
        self._counters = {name: metrics.idempotency.labels(dataset_id, name) for name in self.counts}
        self._warned_about: Optional[float] = None  # the outage (its start) already logged

    def count(self, what: str) -> None:
        self.counts[what] += 1
        self._counters[what].inc()

    async def begin(self, attempt: Attempt) -> None:
        """Hold the key for ``attempt``, or find the first answer; raise 409 or 503 (see the module)."""
        loop = asyncio.get_running_loop()
        started, token = loop.time(), new_token()
        while True:
            try:
                held = await self.store.claim(attempt.key, attempt.digest, token, self.settings.in_flight_ttl)
            except StoreUnavailable as exc:
                self._store_down(exc)
                return
            if held is None:
                attempt.hold(token)
                return
            if held.digest != attempt.digest:
                self.count("conflicts")
                raise IdempotencyKeyReused()
            if held.resmsgid is not None:
                self.count("replayed")
                attempt.replay(held.resmsgid)
                return
            waited = loop.time() - started
            if waited >= self.settings.wait:
                raise IdempotencyKeyInFlight()
            await self.store.wait_for_change(attempt.key, self.settings.wait - waited, waited)

    async def remember(self, key: str, digest: str, token: str, resmsgid: str) -> None:
        try:
            await self.store.answer(key, digest, token, resmsgid, self.settings.window)
        except StoreUnavailable as exc:  # the record is written and the answer stays 200; a retry may write again
            log.warning(
                "dataset %r: a 200 not remembered, a retry of it would be written again: %s", self.dataset_id, exc
            )

    async def let_go(self, key: str, digest: str, token: str) -> None:
        try:
            await self.store.release(key, digest, token)
        except StoreUnavailable:
            pass  # the key in flight expires after in_flight_ttl

    def report(self, detailed: bool) -> Dict[str, Any]:
        health = self.store.health()
        report: Dict[str, Any] = {"store": self.store.kind, "state": "up" if health.up else "down"}
        if detailed:
            if health.error is not None:
                report["error"] = health.error
            report.update(self.store.details())
            report.update(self.counts)
        return report

    def _store_down(self, exc: StoreUnavailable) -> None:
        if self.settings.when_store_down == "refuse":
            self.count("refused")
            raise IdempotencyStoreUnavailable("retry-safe requests cannot be checked now: %s" % exc) from exc
        self.count("unchecked")
        since = self.store.health().since
        if self._warned_about != since:
            self._warned_about = since
            log.warning(
                "dataset %r: requests are written without the retry-safe check while the store is down "
                "(when_store_down: accept)",
                self.dataset_id,
            )


def store_place(dataset_id: str, settings: IdempotencySettings) -> Hashable:
    """What makes a store the same one: a Redis is shared by the datasets that name it; memory is per dataset."""
    if settings.store == "redis":
        return ("redis", settings.url, settings.timeout)
    return ("memory", dataset_id)


class Idempotency:
    """The datasets' gates and their stores, per config; datasets without the setting pass through."""

    def __init__(
        self, gates: Dict[str, DatasetGate], stores: Dict[Hashable, IdempotencyStore], processes: int, metrics: Metrics
    ) -> None:
        self.gates = gates
        self.stores = stores  # by store_place
        self.processes = processes
        self.metrics = metrics

    @classmethod
    def build(
        cls, config: Config, metrics: Metrics, running: Optional[Dict[Hashable, IdempotencyStore]] = None
    ) -> "Idempotency":
        """The gates of ``config``; a store already ``running`` at the same place is used again, with what it holds."""
        running = running or {}
        stores: Dict[Hashable, IdempotencyStore] = {}
        gates = {}
        for dataset in config.datasets.values():
            settings = dataset.idempotency
            if settings is None:
                continue
            place = store_place(dataset.id, settings)
            if place not in stores:
                stores[place] = running.get(place) or new_store(settings)
            store = stores[place]
            if isinstance(store, MemoryStore):
                store.max_keys = settings.max_keys  # a reload may change it; what is remembered stays
            gates[dataset.id] = DatasetGate(dataset.id, settings, store, metrics)
        return cls(gates, stores, config.server.processes, metrics)

    def successor(self, config: Config) -> "Idempotency":
        """The gates of a reloaded config: a store whose place stays is kept, with what it remembers."""
        return self.build(config, self.metrics, running=self.stores)

    def attempt(self, dataset: Dataset, msgid: str, data: Any) -> Attempt:
        gate = self.gates.get(dataset.id)
        if gate is None:
            return Attempt(None)
        return Attempt(gate, store_key(dataset.id, msgid), data_digest(data))

    async def start(self, running: Iterable[IdempotencyStore] = ()) -> None:
        """Start the stores (but those already ``running``, kept from the config before)."""
        already = {id(store) for store in running}
        for store in self.stores.values():
            if id(store) not in already:
                await store.start()
        in_memory = sorted(name for name, gate in self.gates.items() if gate.store.kind == "memory")
        if in_memory and self.processes != 1:
            log.warning(
                "idempotency of %s is kept in each worker process: a retry that reaches another worker is "
                "written again (use store: redis with server.processes other than 1)",
                ", ".join(in_memory),
            )

    async def close(self, still_used: Iterable[IdempotencyStore] = ()) -> None:
        """Close the stores (but those ``still_used`` by the config after this one)."""
        kept = {id(store) for store in still_used}
        for store in self.stores.values():
            if id(store) not in kept:
                await store.close()

    def report(self, detailed: bool) -> Dict[str, Any]:
        """Each opted-in dataset's store, and in detail its error, masked URL and counts, for ``/health``."""
        return {name: gate.report(detailed) for name, gate in self.gates.items()}

    @property
    def stores_down(self) -> bool:
        return any(not store.health().up for store in self.stores.values())


def new_store(settings: IdempotencySettings) -> IdempotencyStore:
    if settings.store == "redis" and settings.url is not None:
        from tornado_ingest.idempotency.redis_store import RedisStore

        return RedisStore(settings.url, settings.timeout)
    return MemoryStore(settings.max_keys)
