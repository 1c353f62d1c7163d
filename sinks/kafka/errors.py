"""What a driver's error means to the client: 404 (no such topic), 413 (too large) or 503, whatever the driver."""

from __future__ import annotations

from typing import Sequence

from sinks.base import DestinationNotFound, RecordTooLarge, SinkError, SinkUnavailable, describe_error
from sinks.kafka import compat, confluent_compat
from sinks.redact import redact


def as_sink_error(error: BaseException, secrets: Sequence[str]) -> SinkError:
    """``error`` from kafka-python or confluent-kafka (or a ``SinkError`` already) as the ``SinkError`` it means."""
    if isinstance(error, SinkError):
        return error
    if compat.topic_does_not_exist(error) or confluent_compat.topic_does_not_exist(error):
        return DestinationNotFound("Kafka says the topic does not exist")
    if compat.record_too_large(error) or confluent_compat.record_too_large(error):
        return RecordTooLarge("record too large for Kafka: %s" % error)
    return SinkUnavailable(redact(describe_error(error), secrets))
