"""``driver: confluent``: a metadata request now and then, so that health follows the broker (as ``probe`` does).

librdkafka keeps its connection troubles to itself, and delivery reports say the
broker is there only while records flow. The poll thread asks for metadata
(``list_topics``, up to ``answer_within`` seconds) on the same schedule as the
kafka-python driver's probe, and dials the bootstrap servers when it gets no
answer, to tell a refused or unroutable address from a silent broker.
"""

from __future__ import annotations

from typing import Any, Sequence

from sinks.base import describe_error
from sinks.kafka.messages import BrokerAnswered, Message, Trouble
from sinks.kafka.probe import DIAL_TIMEOUT, PROBE_INTERVAL, PROBE_INTERVAL_AFTER_FAILURE, PROBE_INTERVAL_UNDER_TRAFFIC
from sinks.kafka.reachability import unreachable_reason


class ConfluentProbe:
    """Used by the poll thread alone; ``check`` blocks up to ``answer_within`` when it is time to ask."""

    def __init__(self, servers: Sequence[str], answer_within: float) -> None:
        self._servers = servers
        self._answer_within = answer_within
        self._asked_at = float("-inf")  # the first probe goes out at once
        self._failing = False

    def due(self, now: float, busy: bool) -> bool:
        """Whether to ask now: ``busy`` (records in flight) asks at most once a second, as does a failing broker."""
        pause = PROBE_INTERVAL_UNDER_TRAFFIC if busy else PROBE_INTERVAL
        if self._failing:
            pause = min(pause, PROBE_INTERVAL_AFTER_FAILURE)
        return now - self._asked_at >= pause

    def check(self, producer: Any, now: float) -> Message:
        """Ask the broker for metadata through ``producer``; what its answer, or its silence, says."""
        self._asked_at = now
        try:
            producer.list_topics(timeout=self._answer_within)
        except Exception as exc:  # KafkaException: _TRANSPORT, _TIMED_OUT, ...
            self._failing = True
            unreachable = unreachable_reason(self._servers, DIAL_TIMEOUT)
            if unreachable is not None:
                return Trouble("cannot reach Kafka: %s" % unreachable, unreachable=True)
            return Trouble("metadata request failed: %s" % describe_error(exc))
        self._failing = False
        return BrokerAnswered()

    def next_due(self) -> float:
        """When a probe is due at the latest (``time.monotonic()``)."""
        return self._asked_at + PROBE_INTERVAL
