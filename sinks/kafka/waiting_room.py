"""Records whose topic's metadata is not known yet wait here, so one slow topic holds up no other.

``KafkaProducer.send`` would block the producer thread until the metadata
came (up to ``max_block_ms``); instead the thread asks for it without waiting
and keeps the topic's records aside. They are sent once the metadata is there,
dropped once nobody waits for them, and failed with ``DestinationNotFound``
once the broker has answered, without the topic, and will not create it.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, NamedTuple

from sinks.base import DestinationNotFound
from sinks.kafka import compat
from sinks.kafka.messages import BrokerAnswered, Failed, Message, NotSent, Outgoing

#: with automatic topic creation, how many answers without the topic, over how long, mean "it does not exist".
ANSWERS_BEFORE_NOT_FOUND = 3
SECONDS_BEFORE_NOT_FOUND = 1.0
#: how often the thread looks again while a metadata request is out.
POLL_WHILE_ASKING = 0.1


class _WaitingTopic:
    """One topic's waiting records and its metadata request."""

    __slots__ = ("records", "since", "answers", "request", "retry_at")

    def __init__(self) -> None:
        self.records: List[Outgoing] = []
        self.since = time.monotonic()
        self.answers = 0  # metadata answers so far that did not have the topic
        self.request: Any = None  # kafka.future.Future of the metadata update, while one is out
        self.retry_at = 0.0


class Review(NamedTuple):
    """What a look at the waiting room found: records to send now, and news for the loop."""

    ready: List[Outgoing]
    news: List[Message]


class WaitingRoom:
    """Used by the producer thread alone."""

    def __init__(self, producer: Any, wake: Callable[[], None]) -> None:
        self._producer = producer
        self._wake = wake  # makes the thread look again when a metadata request is answered
        self._topics: Dict[str, _WaitingTopic] = {}

    def __bool__(self) -> bool:
        return bool(self._topics)

    def must_wait(self, topic: str) -> bool:
        """True if a record for ``topic`` has to wait (others wait already, or the metadata is not known)."""
        return topic in self._topics or not compat.topic_known(self._producer, topic)

    def admit(self, outgoing: Outgoing) -> None:
        waiting = self._topics.get(outgoing.topic)
        if waiting is None:
            waiting = self._topics[outgoing.topic] = _WaitingTopic()
        waiting.records.append(outgoing)

    def review(self, now: float) -> Review:
        """Send, drop or fail what waits; ask for metadata again where it is time."""
        review = Review([], [])
        for topic, waiting in list(self._topics.items()):
            kept: List[Outgoing] = []
            for outgoing in waiting.records:
                if outgoing.abandoned(now):
                    review.news.append(NotSent(outgoing.future))  # its deadline passed: the spool may have it
                else:
                    kept.append(outgoing)
            waiting.records = kept
            if compat.topic_known(self._producer, topic):
                del self._topics[topic]
                review.ready.extend(waiting.records)
            elif not waiting.records:
                del self._topics[topic]
            elif self._heard_back(topic, waiting, now, review.news):
                self._not_found(topic, review.news)
            elif waiting.request is None and now >= waiting.retry_at:
                waiting.request = compat.request_metadata(self._producer, self._wake, topic)
        return review

    def _heard_back(self, topic: str, waiting: _WaitingTopic, now: float, news: List[Message]) -> bool:
        """Take in the answer to the topic's metadata request, if it came; True if the topic does not exist."""
        request = waiting.request
        if request is None or not request.is_done:
            return False
        waiting.request = None
        if request.failed() and compat.topic_does_not_exist(request.exception):
            return True
        if request.succeeded():
            waiting.answers += 1
            news.append(BrokerAnswered())
            auto_create = compat.producer_setting(self._producer, "allow_auto_create_topics")
            if not auto_create or (
                waiting.answers >= ANSWERS_BEFORE_NOT_FOUND and now - waiting.since >= SECONDS_BEFORE_NOT_FOUND
            ):
                return True  # the broker answered, without the topic, and will not create it
        waiting.retry_at = now + compat.producer_setting(self._producer, "retry_backoff_ms") / 1000.0
        return False

    def _not_found(self, topic: str, news: List[Message]) -> None:
        error = DestinationNotFound("Kafka says topic %r does not exist" % topic)
        news.extend(Failed(outgoing.future, error) for outgoing in self._topics.pop(topic).records)

    def next_look(self, now: float) -> float:
        """When the thread should look again (``inf`` when nothing waits)."""
        soonest = float("inf")
        for waiting in self._topics.values():
            soonest = min(soonest, waiting.retry_at if waiting.request is None else now + POLL_WHILE_ASKING)
        return soonest

    def empty(self) -> List[Outgoing]:
        """At close: everything that still waits, for the thread to fail."""
        records = [outgoing for waiting in self._topics.values() for outgoing in waiting.records]
        self._topics.clear()
        return records
