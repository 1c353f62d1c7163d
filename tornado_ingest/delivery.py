"""The one place a record meets its sink.

The per-sink bound on records in flight (429 past ``max_inflight``), the
translation of every sink failure into the contract's answer (503, 404, 413)
and of what a sink says of a record it took (200, or 202 when it is only
spooled) live here and nowhere else.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional

from sinks.base import DestinationNotFound, Receipt, Record, RecordTooLarge, Sink, SinkUnavailable
from tornado_ingest.envelope import SUCCESS_MESSAGE
from tornado_ingest.errors import PayloadTooLarge, ServiceUnavailable, TooManyRequests, TopicNotFound
from tornado_ingest.settings import Dataset


class Answer(NamedTuple):
    """What the client is told of a record its sink took: status, ``responseCode`` and ``result.message``."""

    status: int
    response_code: str
    message: str


INGESTED = Answer(200, "OK", SUCCESS_MESSAGE)
SPOOLED = Answer(
    202,
    "ACCEPTED",
    "Data accepted: the broker cannot take it now, so it is spooled on the gateway's disk "
    "and will be delivered when the broker is back",
)


def answer_for(receipt: Optional[Receipt]) -> Answer:
    return SPOOLED if receipt is not None and receipt.spooled else INGESTED


class RecordRouter:
    def __init__(self, sinks: Dict[str, Sink], max_inflight: Mapping[str, int], retry_after: int) -> None:
        self.sinks = sinks
        self.max_inflight = max_inflight
        self.records_in_flight: Dict[str, int] = {name: 0 for name in sinks}
        self._retry_after = {"Retry-After": str(retry_after)}

    async def deliver(self, dataset: Dataset, record: Record) -> Optional[Receipt]:
        """Hand one record to the dataset's sink; return once the sink has it, with what the sink said of it."""
        topic = dataset.entry_topic
        if not topic:
            raise TopicNotFound()
        name = dataset.sink
        in_flight = self.records_in_flight[name]
        if in_flight >= self.max_inflight[name]:
            raise TooManyRequests(
                "sink %r has %d records in flight (max_inflight); retry later" % (name, in_flight),
                headers=dict(self._retry_after),
            )
        self.records_in_flight[name] = in_flight + 1
        try:
            return await self.sinks[name].send(topic, record)
        except SinkUnavailable as exc:
            raise ServiceUnavailable(
                "sink %r cannot take records now: %s" % (name, exc), headers=dict(self._retry_after)
            ) from exc
        except DestinationNotFound as exc:
            raise TopicNotFound("Entry topic %r does not exist: %s" % (topic, exc)) from exc
        except RecordTooLarge as exc:
            raise PayloadTooLarge("sink %r refuses a record this large: %s" % (name, exc)) from exc
        finally:
            self.records_in_flight[name] -= 1

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
