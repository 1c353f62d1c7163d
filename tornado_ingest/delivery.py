"""The one place a record meets its sink.

The per-sink bound on records in flight (429 past ``max_inflight``) and the
translation of every sink failure into the contract's answer (503, 404, 413)
live here and nowhere else.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional

from sinks.base import DestinationNotFound, Receipt, Record, RecordTooLarge, Sink, SinkUnavailable
from tornado_ingest.errors import PayloadTooLarge, ServiceUnavailable, TooManyRequests, TopicNotFound
from tornado_ingest.settings import Dataset


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
        """Those of ``names`` whose sink says it is down."""
        return [name for name in names if not self.sinks[name].is_up]
