"""A metadata request now and then, so that health follows the broker while no record is sent.

Acknowledgements say the broker is there only while traffic flows; an idle
sink would otherwise stay "up" through an outage, or "down" after one.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from sinks.base import describe_error
from sinks.kafka import compat
from sinks.kafka.messages import BrokerAnswered, Message, Trouble
from sinks.kafka.reachability import unreachable_reason

#: seconds between probes while the broker answers; after a failure it is asked again sooner.
PROBE_INTERVAL = 5.0
PROBE_INTERVAL_AFTER_FAILURE = 1.0
#: seconds a metadata request may go unanswered before the broker counts as away (a healthy one answers in
#: milliseconds); a shorter send_timeout is used instead.
ANSWER_WITHIN = 2.0
#: while records are sent, the broker is asked at most this often (records that will never be acknowledged
#: must be noticed in seconds, not at the next idle probe).
PROBE_INTERVAL_UNDER_TRAFFIC = 1.0
#: seconds a TCP dial to one bootstrap server may take, to learn why Kafka does not answer.
DIAL_TIMEOUT = 1.0


class HealthProbe:
    """Used by the producer thread alone: ``check`` at every turn, ``next_look`` to know when to."""

    def __init__(self, producer: Any, wake: Callable[[], None], servers: Sequence[str], answer_within: float) -> None:
        self._producer = producer
        self._wake = wake
        self._servers = servers
        self._answer_within = answer_within  # seconds; longer without an answer is trouble
        self._request: Any = None  # kafka.future.Future of the metadata update, while one is out
        self._sent_at = 0.0
        self._next_at = 0.0  # the first probe goes out at once

    def check(self, now: float) -> Optional[Message]:
        """Send a probe when it is time; the news when one was answered, or went unanswered too long."""
        request = self._request
        if request is None:
            if now >= self._next_at:
                self._sent_at = now
                self._request = compat.request_metadata(self._producer, self._wake)
            return None
        if request.is_done:
            self._request = None
            if request.succeeded() or compat.topic_does_not_exist(request.exception):
                self._next_at = now + PROBE_INTERVAL
                return BrokerAnswered()
            self._next_at = now + PROBE_INTERVAL_AFTER_FAILURE
            return Trouble("metadata request failed: %s" % describe_error(request.exception))
        if now - self._sent_at > self._answer_within:
            self._request = None
            self._next_at = now
            unreachable = unreachable_reason(self._servers, DIAL_TIMEOUT)
            if unreachable is not None:
                return Trouble("cannot reach Kafka: %s" % unreachable, unreachable=True)
            return Trouble("Kafka takes connections but answered no metadata request for %.0fs" % self._answer_within)
        return None

    def traffic(self, now: float) -> None:
        """Records were just sent: ask the broker soon, so an outage is known within seconds."""
        self._next_at = min(self._next_at, max(now, self._sent_at + PROBE_INTERVAL_UNDER_TRAFFIC))

    def next_look(self) -> float:
        """When ``check`` has something to do next (``time.monotonic()``)."""
        return self._sent_at + self._answer_within if self._request is not None else self._next_at
