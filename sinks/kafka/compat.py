"""Everything the Kafka sink needs from kafka-python beyond its documented API, fenced in one place.

kafka-python has no public, non-blocking way to ask whether a topic's metadata
is known, nor to ask for it without waiting; ``KafkaProducer.send`` does both
with the private calls below, and blocks while it does. The sink makes the same
calls itself so that its thread never blocks on one slow topic. Each function
says what it relies on; ``tests/unit/compat/test_kafka_python.py`` fails loudly
when an upgrade of kafka-python removes any of it (checked on 2.x and 3.x).

The driver is optional: without kafka-python this module still imports, and
``installed()`` says so (a file-only install imports ``sinks`` all the same).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Collection, Dict, List, Optional

try:
    import kafka
    from kafka import errors as kafka_errors
except ImportError:  # pragma: no cover - exercised only without kafka-python
    kafka = kafka_errors = None

#: why the sink cannot be used, when the driver is missing.
NOT_INSTALLED = "kafka-python is not installed (pip install 'tornado-ingest[kafka]')"


def installed() -> bool:
    return kafka is not None


def version() -> str:
    """The installed kafka-python's version, for messages."""
    return getattr(kafka, "__version__", "(not installed)")


def _driver() -> Any:
    if kafka is None:
        raise RuntimeError(NOT_INSTALLED)
    return kafka


# -- the producer's configuration ------------------------------------------------


def producer_option_names() -> Collection[str]:
    """The options ``KafkaProducer`` takes.

    Relies on the class attribute ``KafkaProducer.DEFAULT_CONFIG`` (a dict of
    every option and its default): the constructor itself only says "unrecognized"
    when it is too late, at start, and without suggesting the name meant.
    """
    return _driver().KafkaProducer.DEFAULT_CONFIG.keys()


def compression_types() -> Optional[List[Optional[str]]]:
    """The ``compression_type`` values this kafka-python knows (``None``: no compression), or None if unknown.

    Relies on the private class attribute ``KafkaProducer._COMPRESSORS`` (codec
    name -> checker), so that a typo is a config error at load rather than a
    ``ValueError`` from a producer built in the background.
    """
    compressors = getattr(_driver().KafkaProducer, "_COMPRESSORS", None)
    return None if compressors is None else list(compressors)


def producer_option_defaults() -> Dict[str, Any]:
    """Every ``KafkaProducer`` option with kafka-python's default (``KafkaProducer.DEFAULT_CONFIG``), to check types."""
    return dict(_driver().KafkaProducer.DEFAULT_CONFIG)


#: the package each optional compression codec needs
CODEC_PACKAGES = {"snappy": "python-snappy", "lz4": "lz4", "zstd": "zstandard"}


def codec_installed(compression_type: str) -> bool:
    """Whether kafka-python can compress with ``compression_type`` here (``kafka.codec.has_<name>()``, public)."""
    has = getattr(importlib.import_module("kafka.codec"), "has_%s" % compression_type, None)
    return has is None or bool(has())


def producer_setting(producer: Any, name: str) -> Any:
    """One setting of a built producer, defaults filled in (``allow_auto_create_topics``, ``retry_backoff_ms``).

    Relies on ``KafkaProducer.config``, the dict the constructor fills from
    ``DEFAULT_CONFIG`` and the options it was given.
    """
    return producer.config[name]


# -- building a producer -----------------------------------------------------------


def build_producer(config: Dict[str, Any]) -> Any:
    """A ``KafkaProducer`` with ``config``, and with ``allow_auto_create_topics`` really in force.

    May block (bootstrap, version probe) and raise (``NoBrokersAvailable``, bad
    option values): call it from the sink's thread.
    """
    client_class = leader_tolerant_client()
    if client_class is not None and "kafka_client" not in config:
        config = dict(config, kafka_client=client_class)
    producer = _driver().KafkaProducer(**config)
    _hand_auto_create_to_metadata(producer)
    return producer


_leader_tolerant_client: Any = None


def leader_tolerant_client() -> Any:
    """kafka-python 3.x's ``KafkaNetClient``, made to survive a partition leader the metadata lists no broker for.

    When a broker goes down, the metadata can for a while name it as a leader
    while its broker list no longer has it (the controller has not moved the
    leadership yet). kafka-python 3.0's sender then calls
    ``KafkaNetClient.maybe_connect(node_id)`` for that leader, which raises
    ``UnknownBrokerIdError``; the sender thread logs it and starts its turn again,
    before polling, so no metadata is ever asked for again and the producer
    stays stuck after the leadership moved. Here the error asks for fresh metadata
    instead, as kafka-python 2.x did: the producer moves to the new leader.

    Relies on ``kafka.net.compat.KafkaNetClient`` (3.x; its ``maybe_connect``
    and ``cluster``) and on the public ``kafka_client`` option of
    ``KafkaProducer``. None on kafka-python 2.x, whose client has no such trouble.
    """
    global _leader_tolerant_client
    if _leader_tolerant_client is None:
        try:
            from kafka.net.compat import KafkaNetClient
        except ImportError:
            return None

        class LeaderTolerantClient(KafkaNetClient):
            def maybe_connect(self, node_id: Any, **kwargs: Any) -> None:
                try:
                    super().maybe_connect(node_id, **kwargs)
                except kafka_errors.UnknownBrokerIdError:
                    self.cluster.request_update()

        _leader_tolerant_client = LeaderTolerantClient
    return _leader_tolerant_client


def _hand_auto_create_to_metadata(producer: Any) -> None:
    """kafka-python 3.0 does not pass ``allow_auto_create_topics`` on to its cluster metadata: do it.

    Relies on ``producer._metadata.config``, the ``ClusterMetadata``'s own config
    dict, whose ``allow_auto_create_topics`` is what its metadata requests carry
    (3.x); without this a producer told not to create topics still asks the
    broker to. 2.x reads the setting elsewhere: the extra key changes nothing there.
    """
    cluster_config = getattr(producer._metadata, "config", None)
    wanted = producer.config.get("allow_auto_create_topics")
    if isinstance(cluster_config, dict) and wanted is not None:
        if cluster_config.get("allow_auto_create_topics") != wanted:
            cluster_config["allow_auto_create_topics"] = wanted


# -- topic metadata without blocking ---------------------------------------------


def topic_known(producer: Any, topic: str) -> bool:
    """Whether ``producer.send`` to ``topic`` would go ahead without waiting for metadata.

    Relies on ``producer._metadata.partitions_for_topic(topic)``, None while the
    topic's partitions are unknown: the test ``send`` itself makes first.
    """
    return producer._metadata.partitions_for_topic(topic) is not None


def request_metadata(producer: Any, when_done: Callable[[], None], topic: Optional[str] = None) -> Any:
    """Ask the broker for metadata (about ``topic`` too, if given) without waiting; ``when_done()`` runs after.

    Returns the ``kafka.future.Future`` of the update (``is_done``,
    ``succeeded()``, ``exception``). Relies on what ``send`` does while it
    waits for a topic: ``producer._sender.add_topic(topic)`` (the topic joins
    the metadata requests), ``producer._metadata.request_update()`` (the future)
    and ``producer._sender.wakeup()`` (the sender thread sends it now).
    ``when_done`` runs in kafka-python's sender thread.
    """
    if topic is not None:
        producer._sender.add_topic(topic)
    request = producer._metadata.request_update()
    request.add_both(lambda _outcome: when_done())
    producer._sender.wakeup()
    return request


# -- errors ------------------------------------------------------------------------


def topic_does_not_exist(error: Optional[BaseException]) -> bool:
    """The broker says the topic does not exist (``kafka.errors.UnknownTopicOrPartitionError``)."""
    return kafka_errors is not None and isinstance(error, kafka_errors.UnknownTopicOrPartitionError)


def record_too_large(error: Optional[BaseException]) -> bool:
    """Kafka will never take this record (``kafka.errors.MessageSizeTooLargeError``)."""
    return kafka_errors is not None and isinstance(error, kafka_errors.MessageSizeTooLargeError)
