"""Everything the ``driver: confluent`` Kafka sink needs from confluent-kafka, in one place.

Only documented API is used (``Producer``, ``KafkaError``, ``KafkaException``,
``BufferError`` from ``produce``); the error codes the sink tells apart are
named here, and ``tests/unit/compat/test_confluent_kafka.py`` fails loudly
when an upgrade renames one, or when librdkafka no longer knows a config
property ``confluent_options`` maps to.

The driver is optional: without confluent-kafka this module still imports, and
``installed()`` says so.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

try:
    import confluent_kafka
except ImportError:  # pragma: no cover - exercised only without confluent-kafka
    confluent_kafka = None  # type: ignore[assignment]

#: why ``driver: confluent`` cannot be used, when the package is missing.
NOT_INSTALLED = "confluent-kafka is not installed (pip install 'tornado-ingest[confluent]')"

#: where librdkafka's own log lines go (as kafka-python's go to ``kafka``), instead of stderr.
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")

#: ``KafkaError`` codes (by name) meaning: the topic does not exist.
TOPIC_NOT_FOUND = ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC")
#: ... Kafka will never take a record this large.
TOO_LARGE = ("MSG_SIZE_TOO_LARGE",)


def installed() -> bool:
    return confluent_kafka is not None


def version() -> str:
    """confluent-kafka's and librdkafka's versions, for messages."""
    if confluent_kafka is None:
        return "(not installed)"
    return "%s (librdkafka %s)" % (confluent_kafka.version()[0], confluent_kafka.libversion()[0])


def build_producer(config: Dict[str, Any]) -> Any:
    """A ``confluent_kafka.Producer``; it connects in librdkafka's own threads, so this does not block.

    Raises ``KafkaException`` for a config librdkafka refuses. librdkafka's log
    lines go to the ``librdkafka`` logger (the ``logger`` property, documented).
    """
    if confluent_kafka is None:
        raise RuntimeError(NOT_INSTALLED)
    return confluent_kafka.Producer(dict(config, logger=LIBRDKAFKA_LOG))


def _code_name(error: Optional[BaseException]) -> Optional[str]:
    """The ``KafkaError`` code name a ``KafkaException`` carries (its first argument), else None."""
    if confluent_kafka is None or not isinstance(error, confluent_kafka.KafkaException) or not error.args:
        return None
    kafka_error = error.args[0]
    return kafka_error.name() if isinstance(kafka_error, confluent_kafka.KafkaError) else None


def topic_does_not_exist(error: Optional[BaseException]) -> bool:
    return _code_name(error) in TOPIC_NOT_FOUND


def record_too_large(error: Optional[BaseException]) -> bool:
    return _code_name(error) in TOO_LARGE


def as_exception(kafka_error: Any) -> BaseException:
    """A delivery report's ``KafkaError`` as an exception the sink can classify and describe."""
    if confluent_kafka is None:  # pragma: no cover - no producer without the package
        return RuntimeError(str(kafka_error))
    return confluent_kafka.KafkaException(kafka_error)
