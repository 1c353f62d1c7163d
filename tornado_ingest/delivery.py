"""The one place a record meets its sink.

The per-sink bound on records in flight (429 past ``max_inflight``), the
translation of every sink failure into the contract's answer (503, 404, 413)
live here and nowhere else; what the client is told of the records taken
(200, 202 when only spooled, 207) is ``outcomes``'.
"""

from __future__ import annotations

import time
from typing import Awaitable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from sinks.base import DestinationNotFound, Receipt, Record, RecordTooLarge, Sink, SinkUnavailable
from tornado_ingest.errors import PayloadTooLarge, ServiceUnavailable, TooManyRequests, TopicNotFound
from tornado_ingest.metrics import Metrics, SpoolFigures
from tornado_ingest.settings import Dataset


class SinkGate:
    """One sink, its bound on records in flight and its figures; kept across reloads while the sink is unchanged."""

    def __init__(self, name: str, sink: Sink, max_inflight: int, metrics: Metrics) -> None:
        self.name = name
        self.sink = sink
        self.in_flight = 0
        self.max_inflight = max_inflight
        self.in_flight_gauge = metrics.in_flight.labels(name)
        self.max_inflight_gauge = metrics.max_inflight.labels(name)
        self.max_inflight_gauge.set(max_inflight)
        self.ack_seconds = metrics.ack_seconds.labels(name)
        self.refused = {status: metrics.refusals.labels(name, status) for status in ("429", "503")}
        self.up_gauge = metrics.sink_up.labels(name)
        self.metrics = metrics
        self.spool_figures: Optional[SpoolFigures] = None  # made for a sink with a spool, at its first report

    def refresh_gauges(self) -> None:
        """Up or down, and the spool's figures when the sink has one."""
        health = self.sink.health()
        self.up_gauge.set(1 if health.up else 0)
        spool = health.details.get("spool")
        if spool is not None:
            if self.spool_figures is None:
                self.spool_figures = SpoolFigures(self.metrics, self.name)
            self.spool_figures.update(spool)

    def limit(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self.max_inflight_gauge.set(max_inflight)


class RecordRouter:
    def __init__(self, gates: Mapping[str, SinkGate], retry_after: int) -> None:
        self.gates = gates
        self.sinks: Dict[str, Sink] = {name: gate.sink for name, gate in gates.items()}
        self._retry_after = {"Retry-After": str(retry_after)}

    @property
    def records_in_flight(self) -> Dict[str, int]:
        return {name: gate.in_flight for name, gate in self.gates.items()}

    async def deliver(self, dataset: Dataset, record: Record) -> Optional[Receipt]:
        """Hand one record to the dataset's sink; return once the sink has it, with what the sink said of it."""
        if not dataset.entry_topic:
            raise TopicNotFound()
        return await self.deliver_to(dataset.sink, dataset.entry_topic, record)

    async def deliver_to(self, sink: str, topic: str, record: Record) -> Optional[Receipt]:
        """Hand one record to a sink, for ``topic``; the sink's failures become the contract's answers."""
        gate = self.gates[sink]
        self.admit(gate, 1)
        return await self._send(gate, topic, record)

    def deliver_together(
        self, sink: str, records: Sequence[Tuple[str, Record]]
    ) -> "List[Awaitable[Optional[Receipt]]]":
        """Hand a request's records for one sink over as one: admitted (or refused, 429) together, so a
        ``per_event`` batch larger than ``max_inflight`` is not refused in part; one awaitable per record."""
        gate = self.gates[sink]
        self.admit(gate, len(records))
        return [self._send(gate, topic, record) for topic, record in records]

    def admit(self, gate: SinkGate, count: int) -> None:
        """Take ``count`` records in flight on the gate, or refuse them all (429) while it is at ``max_inflight``."""
        if gate.in_flight >= gate.max_inflight:
            gate.refused["429"].inc()
            raise TooManyRequests(
                "sink %r has %d records in flight (max_inflight); retry later" % (gate.name, gate.in_flight),
                headers=dict(self._retry_after),
            )
        gate.in_flight += count
        gate.in_flight_gauge.inc(count)

    async def _send(self, gate: SinkGate, topic: str, record: Record) -> Optional[Receipt]:
        """One admitted record to its sink; it leaves the gate's count however it ends."""
        name = gate.name
        started = time.monotonic()
        try:
            receipt = await gate.sink.send(topic, record)
            gate.ack_seconds.observe(time.monotonic() - started)
            return receipt
        except SinkUnavailable as exc:
            gate.refused["503"].inc()
            raise ServiceUnavailable(
                "sink %r cannot take records now: %s" % (name, exc), headers=dict(self._retry_after)
            ) from exc
        except DestinationNotFound as exc:
            raise TopicNotFound("Entry topic %r does not exist: %s" % (topic, exc)) from exc
        except RecordTooLarge as exc:
            raise PayloadTooLarge("sink %r refuses a record this large: %s" % (name, exc)) from exc
        finally:
            gate.in_flight -= 1
            gate.in_flight_gauge.dec()

    def sinks_down(self, names: Iterable[str]) -> List[str]:
        """Those of ``names`` whose sink is down and takes no record (one that spools still takes them)."""
        down = []
        for name in names:
            health = self.sinks[name].health()
            if not health.up and not health.spooling:
                down.append(name)
        return down

    def sinks_spooling(self, names: Iterable[str]) -> List[str]:
        """Those of ``names`` whose sink is down and spools its records (answered 202)."""
        return [name for name in names if self.sinks[name].health().spooling]

    def refresh_gauges(self) -> None:
        """Each sink's up/down into its gauge (once a second, and at each scrape)."""
        for gate in self.gates.values():
            gate.refresh_gauges()
