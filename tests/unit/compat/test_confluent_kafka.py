"""What the ``driver: confluent`` Kafka sink relies on in confluent-kafka: fails loudly when an upgrade changes it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import installed_or_skip


@pytest.fixture(autouse=True)
def confluent_kafka():
    return installed_or_skip("confluent_kafka", "confluent")


def test_the_error_codes_the_sink_tells_apart_are_there(confluent_kafka):
    from sinks.kafka import confluent_compat

    for name in confluent_compat.TOPIC_NOT_FOUND + confluent_compat.TOO_LARGE:
        code = getattr(confluent_kafka.KafkaError, name, None)
        assert code is not None, "confluent_kafka.KafkaError.%s is gone (needed to answer 404 and 413)" % name
        error = confluent_compat.as_exception(confluent_kafka.KafkaError(code))
        assert confluent_compat.topic_does_not_exist(error) == (name in confluent_compat.TOPIC_NOT_FOUND)
        assert confluent_compat.record_too_large(error) == (name in confluent_compat.TOO_LARGE)
    timed_out = confluent_compat.as_exception(confluent_kafka.KafkaError(confluent_kafka.KafkaError._MSG_TIMED_OUT))
    assert not confluent_compat.topic_does_not_exist(timed_out) and not confluent_compat.record_too_large(timed_out)
    assert not confluent_compat.topic_does_not_exist(ValueError("x"))


def test_produce_refuses_at_once_what_the_sink_answers_413_and_503_to(confluent_kafka):
    """A record over ``message.max.bytes`` raises ``KafkaException`` from ``produce`` (413), a full queue
    ``BufferError`` (503): no broker needed for either."""
    from sinks.kafka import confluent_compat

    producer = confluent_compat.build_producer(
        {"bootstrap.servers": "127.0.0.1:1", "message.max.bytes": 1000, "queue.buffering.max.messages": 1}
    )
    with pytest.raises(confluent_kafka.KafkaException) as caught:
        producer.produce("t", b"x" * 5000)
    assert confluent_compat.record_too_large(caught.value)
    reports = []
    producer.produce("t", b"x", on_delivery=lambda error, message: reports.append(error))
    with pytest.raises(BufferError):
        producer.produce("t", b"y")
    # what the sink's close does with what flush could not deliver: purged, each with its delivery report
    producer.purge()
    producer.flush(1)
    assert [error.name() for error in reports] == ["_PURGE_QUEUE"]


def test_without_confluent_kafka_the_driver_is_a_config_error_naming_the_extra():
    code = (
        "import sys; sys.modules['confluent_kafka'] = None\n"  # as if it were not installed
        "from sinks.kafka import KafkaSink, confluent_compat\n"
        "from voluptuous import Invalid\n"
        "assert not confluent_compat.installed()\n"
        "try:\n"
        "    KafkaSink.OPTIONS({'driver': 'confluent'})\n"
        "except Invalid as exc:\n"
        "    print(exc.path, exc.error_message)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "['driver']" in done.stdout
    assert "pip install 'tornado-ingest[confluent]'" in done.stdout
