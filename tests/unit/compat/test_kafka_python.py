"""What ``sinks/kafka/compat.py`` takes from kafka-python beyond its documented API, checked without a broker.

One test per thing relied on; each fails with a message naming the installed
kafka-python and what it no longer has, so an upgrade that breaks the sink is
caught here and not in production. They run on kafka-python 2.x and 3.x (tox).
The producer is built against a port nobody listens on, with ``api_version``
given, so it never waits for a broker.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest

from sinks.kafka import compat
from sinks.kafka.options import PRODUCER_DEFAULTS, SECRET_OPTIONS
from tests.support import skip_or_fail

try:
    import kafka
    import kafka.errors
    import kafka.future
except ImportError:  # pragma: no cover
    kafka = None


def require_kafka_python() -> None:
    if kafka is None:
        skip_or_fail("kafka-python is not installed")


def relied_on(owner: Any, attribute: str, shown_as: str, purpose: str) -> Any:
    """``owner.attribute``, or a failure that says which kafka-python dropped it and what the sink needs it for."""
    if not hasattr(owner, attribute):
        pytest.fail(
            "kafka-python %s has no %s any more: sinks/kafka/compat.py needs it %s"
            % (compat.version(), shown_as, purpose),
            pytrace=False,
        )
    return getattr(owner, attribute)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def producer():
    require_kafka_python()
    built = compat.build_producer(
        {
            "bootstrap_servers": ["127.0.0.1:%d" % unused_port()],
            "api_version": (2, 3),  # given: no version probe, so nothing waits for a broker
            "allow_auto_create_topics": False,
            "max_block_ms": 100,
            "request_timeout_ms": 200,
            "reconnect_backoff_ms": 50,
            "reconnect_backoff_max_ms": 100,
        }
    )
    yield built
    built.close(timeout=1)


def test_the_producer_lists_its_options():
    require_kafka_python()
    table = relied_on(
        kafka.KafkaProducer, "DEFAULT_CONFIG", "KafkaProducer.DEFAULT_CONFIG", "to check option names at config load"
    )
    assert isinstance(table, dict), "kafka-python %s: KafkaProducer.DEFAULT_CONFIG is no dict" % compat.version()
    needed = set(PRODUCER_DEFAULTS) | set(SECRET_OPTIONS)
    needed |= {"max_block_ms", "client_id", "allow_auto_create_topics", "retry_backoff_ms", "api_version"}
    missing = sorted(needed - set(table))
    assert not missing, "kafka-python %s: KafkaProducer no longer takes %s" % (compat.version(), ", ".join(missing))
    assert set(compat.producer_option_names()) == set(table)


def test_the_producer_lists_its_compression_codecs():
    require_kafka_python()
    codecs = relied_on(
        kafka.KafkaProducer, "_COMPRESSORS", "KafkaProducer._COMPRESSORS", "to check compression_type at config load"
    )
    assert None in codecs and "gzip" in codecs, "kafka-python %s: _COMPRESSORS is %r" % (compat.version(), codecs)
    assert compat.compression_types() == list(codecs)


def test_a_built_producer_shows_its_settings(producer):
    config = relied_on(producer, "config", "KafkaProducer().config", "to read allow_auto_create_topics and retries")
    for name in ("allow_auto_create_topics", "retry_backoff_ms"):
        assert name in config, "kafka-python %s: KafkaProducer().config has no %r" % (compat.version(), name)
    assert compat.producer_setting(producer, "allow_auto_create_topics") is False
    assert compat.producer_setting(producer, "retry_backoff_ms") == config["retry_backoff_ms"]


def test_the_cluster_metadata_says_which_topics_it_knows(producer):
    metadata = relied_on(producer, "_metadata", "KafkaProducer()._metadata", "to see whether a send would block")
    relied_on(metadata, "partitions_for_topic", "ClusterMetadata.partitions_for_topic", "to see it too")
    assert metadata.partitions_for_topic("nobody-asked-for-this") is None
    assert compat.topic_known(producer, "nobody-asked-for-this") is False


def test_metadata_can_be_asked_for_without_waiting(producer):
    metadata = relied_on(producer, "_metadata", "KafkaProducer()._metadata", "to ask for metadata")
    relied_on(metadata, "request_update", "ClusterMetadata.request_update", "to ask for metadata without waiting")
    sender = relied_on(producer, "_sender", "KafkaProducer()._sender", "to ask for a topic's metadata")
    relied_on(sender, "add_topic", "Sender.add_topic", "to add a topic to the metadata requests")
    relied_on(sender, "wakeup", "Sender.wakeup", "to send a metadata request now")

    request = compat.request_metadata(producer, lambda: None, "a-topic-nobody-has")
    assert isinstance(request, kafka.future.Future), "kafka-python %s: request_update() gave %r" % (
        compat.version(),
        request,
    )
    for attribute in ("is_done", "exception", "succeeded", "failed", "add_both"):
        relied_on(request, attribute, "kafka.future.Future.%s" % attribute, "to read a metadata answer")
    assert not request.is_done  # nobody listens on that port


def test_a_metadata_answer_calls_back_once_with_the_outcome():
    require_kafka_python()
    calls = []
    future = kafka.future.Future()
    future.add_both(lambda outcome: calls.append(outcome))  # the shape compat.request_metadata relies on
    future.failure(kafka.errors.UnknownTopicOrPartitionError())
    assert len(calls) == 1 and compat.topic_does_not_exist(calls[0])
    assert future.is_done and future.failed() and not future.succeeded()


def test_send_callbacks_get_their_arguments_then_the_outcome():
    require_kafka_python()
    calls = []
    acknowledged, failed = kafka.future.Future(), kafka.future.Future()
    acknowledged.add_callback(lambda *args: calls.append(args), "inbox", "future")
    failed.add_errback(lambda *args: calls.append(args), "inbox", "future")
    acknowledged.success("metadata")
    error = kafka.errors.MessageSizeTooLargeError("too big")
    failed.failure(error)
    assert calls == [("inbox", "future", "metadata"), ("inbox", "future", error)]
    assert compat.record_too_large(error)


def test_allow_auto_create_topics_reaches_the_metadata_requests(producer):
    metadata = relied_on(producer, "_metadata", "KafkaProducer()._metadata", "to pass allow_auto_create_topics on")
    cluster_config = relied_on(metadata, "config", "ClusterMetadata.config", "to pass allow_auto_create_topics on")
    assert isinstance(cluster_config, dict), "kafka-python %s: ClusterMetadata.config is %r" % (
        compat.version(),
        cluster_config,
    )
    assert cluster_config.get("allow_auto_create_topics") is False


def test_the_errors_the_sink_tells_apart_are_there():
    require_kafka_python()
    for name in ("UnknownTopicOrPartitionError", "MessageSizeTooLargeError"):
        relied_on(kafka.errors, name, "kafka.errors.%s" % name, "to answer 404 and 413")
    assert compat.topic_does_not_exist(kafka.errors.UnknownTopicOrPartitionError())
    assert not compat.topic_does_not_exist(kafka.errors.KafkaTimeoutError())
    assert not compat.record_too_large(None)


def test_without_kafka_python_the_sinks_still_import():
    code = (
        "import sys; sys.modules['kafka'] = None\n"  # as if it were not installed
        "import sinks, sinks.kafka\n"
        "from sinks.kafka import KafkaSink, compat\n"
        "from voluptuous import Invalid\n"
        "assert not compat.installed()\n"
        "try:\n"
        "    KafkaSink.OPTIONS({})\n"
        "except Invalid as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert compat.NOT_INSTALLED in done.stdout


def test_a_leader_missing_from_the_broker_list_asks_for_metadata_instead_of_stalling(producer):
    """kafka-python 3.x: ``maybe_connect`` to a broker id the metadata does not list raises (see compat)."""
    client_class = compat.leader_tolerant_client()
    if not kafka.__version__.startswith("2."):
        assert client_class is not None, "kafka-python %s has no kafka.net.compat.KafkaNetClient" % compat.version()
    if client_class is None:
        return  # kafka-python 2.x: its client asks for metadata by itself
    sender = relied_on(producer, "_sender", "KafkaProducer()._sender", "to reach the producer's client")
    client = relied_on(sender, "_client", "Sender._client", "to check the producer uses the tolerant client")
    assert isinstance(client, client_class), "kafka-python %s ignored the kafka_client option" % compat.version()
    relied_on(client, "cluster", "KafkaNetClient.cluster", "to ask for metadata")
    with pytest.raises(kafka.errors.UnknownBrokerIdError):  # what the workaround is for: still there?
        super(client_class, client).maybe_connect(4242)
    client.maybe_connect(4242)  # no broker 4242: asks for metadata, raises nothing
