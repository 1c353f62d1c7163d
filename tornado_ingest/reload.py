"""A new config without a restart (SIGHUP): checked whole, new sinks started, swapped at once, old sinks retired.

A bad config is refused with one line naming the key, and the config in force
stays. A good one: the sinks that are new or whose options changed are started
first; then the service's Context is replaced in one assignment, so every
request that starts afterwards sees the new config whole, and every request in
flight finishes with the one it started with. The sinks no longer used are
closed once their records in flight are answered (at most ``drain_timeout``).
An idempotency store whose place stays (the dataset's memory, the same Redis)
is kept with the answers it remembers.
Listening settings (address, port, processes) cannot change in a running
process: a change is named in the log and left as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Callable, Dict, List, Tuple

from tornado_ingest.config import Config, ConfigError
from tornado_ingest.delivery import SinkGate
from tornado_ingest.service import Service
from tornado_ingest.settings import SinkSpec

log = logging.getLogger(__name__)

#: server settings a running process keeps: they were used to bind and to fork
FIXED_AT_START = ("port", "address", "processes", "management_port", "management_address", "event_loop")


def same_sink(old: SinkSpec, new: SinkSpec) -> bool:
    """Whether the running sink can stay: same type and options (``max_inflight`` may change live)."""
    return old.cls is new.cls and old.options == new.options


class Reloader:
    def __init__(self, service: Service, load: Callable[[], Config]) -> None:
        self.service = service
        self.load = load  # reads and checks the config file, with the command line's flags
        self._lock = asyncio.Lock()  # one reload at a time

    def reload_soon(self) -> None:
        """From the SIGHUP handler: reload on the loop (after the start-up, if it is still going on)."""
        asyncio.ensure_future(self.reload())

    async def reload(self) -> bool:
        """Reload now; True when the new config is in force."""
        await self.service.started.wait()
        if self.service.context.drain.draining:
            log.warning("config reload not done: the service is stopping")
            return False
        async with self._lock:
            metrics = self.service.context.metrics
            try:
                config = await asyncio.get_running_loop().run_in_executor(None, self.load)
            except ConfigError as exc:
                metrics.reloads.labels("failure").inc()
                log.error("config reload refused, the config in force stays: %s", exc)
                return False
            old = self.service.context
            config = keep_fixed_settings(old.config, config)
            idempotency = old.idempotency.successor(config)
            try:
                gates, started = await self._gates_for(config)
                await idempotency.start(running=old.idempotency.stores.values())
            except Exception:
                metrics.reloads.labels("failure").inc()
                log.exception("config reload failed while starting its sinks; the config in force stays")
                return False
            self.service.context = old.successor(config, gates, idempotency)
            retired = [gate for name, gate in old.router.gates.items() if gates.get(name) is not gate]
            for gate in retired:
                self.service.retire(gate, config.server.drain_timeout)
            # A request still in flight on a retired store finds it closed: the store counts as down for it.
            await old.idempotency.close(still_used=idempotency.stores.values())
            self.service.settle_heap()
            metrics.reloads.labels("success").inc()
            metrics.config_loaded(config.digest, config.source, previous=(old.config.digest, old.config.source))
            log.info(
                "config reloaded from %s: %d datasets, %d sinks (%d started, %d retired)",
                config.source,
                len(config.datasets),
                len(config.sinks),
                len(started),
                len(retired),
            )
            return True

    async def _gates_for(self, config: Config) -> Tuple[Dict[str, SinkGate], List[SinkGate]]:
        """A gate per sink of ``config``: the running one where the sink is the same, else a new one, started."""
        old = self.service.context
        gates: Dict[str, SinkGate] = {}
        started: List[SinkGate] = []
        try:
            for name, spec in config.sinks.items():
                old_spec = old.config.sinks.get(name)
                if old_spec is not None and same_sink(old_spec, spec):
                    gates[name] = old.router.gates[name]
                    continue
                gate = SinkGate(name, spec.build(), spec.max_inflight, old.metrics)
                await gate.sink.start()
                log.info("sink %r started for the new config: %s", name, "up" if gate.sink.is_up else "down")
                started.append(gate)
                gates[name] = gate
        except BaseException:
            for gate in started:
                await gate.sink.close()
            raise
        for name, gate in gates.items():
            gate.limit(config.sinks[name].max_inflight)
        return gates, started


def keep_fixed_settings(old: Config, new: Config) -> Config:
    """``new`` with the listening settings of ``old``: each one that differs is named in the log."""
    kept = {}
    for name in FIXED_AT_START:
        before, after = getattr(old.server, name), getattr(new.server, name)
        if before != after:
            log.warning(
                "server.%s cannot change without a restart: it stays %r (the file says %r)", name, before, after
            )
            kept[name] = before
    if kept:
        new.server = dataclasses.replace(new.server, **kept)
    return new
