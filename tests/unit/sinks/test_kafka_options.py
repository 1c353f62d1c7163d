"""The Kafka sink's options, checked at config load: no broker needed.

Option errors name their key, ``api_version`` takes its written forms, the
defaults and bootstrap forms, topic names, and health that never shows a secret.
Without kafka-python these fail in CI (``CI=true``) and skip elsewhere.
"""

from __future__ import annotations

import json

import pytest

from tests.support import skip_or_fail
from tornado_ingest.config import ConfigError, parse_config
from tornado_ingest.handlers import health_report

try:
    import kafka  # noqa: F401
except ImportError:  # pragma: no cover
    kafka = None


def require_kafka_python():
    if kafka is None:
        skip_or_fail("kafka-python is not installed")


def config_with(sink):
    return {"sinks": {"bus": dict({"type": "kafka"}, **sink)}, "datasets": {"d": {"sink": "bus", "entry_topic": "t"}}}


def test_an_unknown_producer_option_is_a_config_error_naming_it():
    require_kafka_python()
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with({"producer": {"acks": "all", "lingr_ms": 5}}))
    assert caught.value.path == "sinks.bus.producer.lingr_ms"
    assert "lingr_ms" in str(caught.value)
    assert "linger_ms" in str(caught.value)  # the suggestion


@pytest.mark.parametrize(
    "producer, path",
    [
        ({"bootstrap_servers": "h:9092"}, "sinks.bus.producer.bootstrap_servers"),
        ({"value_serializer": "str"}, "sinks.bus.producer.value_serializer"),
        ({"api_version": "two"}, "sinks.bus.producer.api_version"),
        ({"acks": "some"}, "sinks.bus.producer.acks"),
        ({"compression_type": "gzp"}, "sinks.bus.producer.compression_type"),
        ("acks=all", "sinks.bus.producer"),
    ],
)
def test_bad_producer_options_are_config_errors(producer, path):
    require_kafka_python()
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with({"producer": producer}))
    assert caught.value.path == path


@pytest.mark.parametrize("written, version", [("2.3", (2, 3)), (2.3, (2, 3)), ("0.10.2", (0, 10, 2)), ("auto", None)])
def test_api_version_may_be_a_string(written, version):
    require_kafka_python()
    # enable_idempotence: false, or a broker older than 0.11 is refused (see below)
    config = parse_config(config_with({"producer": {"api_version": written, "enable_idempotence": False}}))
    sink = config.sinks["bus"].build()
    assert sink.producer_config["api_version"] == version


def test_options_defaults_and_bootstrap_forms():
    require_kafka_python()
    config = parse_config(config_with({"bootstrap_servers": " h1:9092, h2:9093 "}))
    sink = config.sinks["bus"].build()
    assert sink.bootstrap_servers == ["h1:9092", "h2:9093"]
    assert sink.send_timeout == 10
    assert sink.producer_config["acks"] == "all"
    assert sink.producer_config["linger_ms"] == 2
    assert sink.producer_config["batch_size"] == 262144  # a batch of events shares produce batches too
    assert sink.producer_config["bootstrap_servers"] == ["h1:9092", "h2:9093"]
    listed = (
        parse_config(
            config_with({"bootstrap_servers": ["h3:9092"], "producer": {"acks": 1, "enable_idempotence": False}})
        )
        .sinks["bus"]
        .build()
    )
    assert listed.bootstrap_servers == ["h3:9092"]
    assert listed.producer_config["acks"] == 1
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with({"bootstrap_servers": ""}))
    assert caught.value.path == "sinks.bus.bootstrap_servers"


@pytest.mark.parametrize(
    "producer, path, says",
    [
        ({"acks": 1}, "sinks.bus.producer.acks", "acks 1: set enable_idempotence: false to use it"),
        ({"retries": 0}, "sinks.bus.producer.retries", "retries 0: set enable_idempotence: false"),
        ({"max_in_flight_requests_per_connection": 6}, "sinks.bus.producer.max_in_flight_requests_per_connection", ""),
        ({"api_version": "0.10.2"}, "sinks.bus.producer.api_version", "a broker of 0.11 or later"),
        ({"linger_ms": "soon"}, "sinks.bus.producer.linger_ms", "expected a whole number"),
        ({"linger_ms": 2.5}, "sinks.bus.producer.linger_ms", "expected a whole number"),
        ({"enable_idempotence": "maybe"}, "sinks.bus.producer.enable_idempotence", ""),
        ({"batch_size": True}, "sinks.bus.producer.batch_size", "expected a whole number"),
    ],
)
def test_settings_that_can_never_work_are_refused_at_load(producer, path, says):
    require_kafka_python()
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with({"producer": producer}))
    assert caught.value.path == path
    assert says in caught.value.reason


def test_numbers_from_the_environment_become_numbers():
    require_kafka_python()
    sink = parse_config(config_with({"producer": {"linger_ms": "20", "enable_idempotence": "false", "acks": 1}}))
    config = sink.sinks["bus"].build().producer_config
    assert (config["linger_ms"], config["enable_idempotence"]) == (20, False)


@pytest.mark.parametrize("codec", ["snappy", "lz4", "zstd"])
def test_a_codec_that_is_not_installed_is_refused_with_the_package_to_install(codec, monkeypatch):
    require_kafka_python()
    from sinks.kafka import compat

    assert compat.codec_installed("gzip")  # kafka-python's own answer: gzip is always there
    monkeypatch.setattr(compat, "codec_installed", lambda name: name == "gzip")
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with({"producer": {"compression_type": codec}}))
    assert caught.value.path == "sinks.bus.producer.compression_type"
    assert "pip install %s" % compat.CODEC_PACKAGES[codec] in caught.value.reason


@pytest.mark.parametrize("topic", ["a b", "", ".", "..", "x" * 250, "t/../etc", "naïve"])
def test_an_illegal_topic_name_is_a_config_error(topic):
    require_kafka_python()
    document = config_with({})
    document["datasets"]["d"]["entry_topic"] = topic
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert caught.value.path.startswith("datasets.d.entry_topic")


def test_health_never_shows_secrets():
    require_kafka_python()
    config = parse_config(
        config_with(
            {
                "bootstrap_servers": "sasl://alice:hunter2@h1:9092",
                "producer": {
                    "security_protocol": "SASL_SSL",
                    "sasl_mechanism": "PLAIN",
                    "sasl_plain_username": "alice",
                    "sasl_plain_password": "hunter2",
                },
            }
        )
    )
    sink = config.sinks["bus"].build()
    report = sink.health()
    assert not report.up
    assert "hunter2" not in repr(report)
    assert "hunter2" not in json.dumps(health_report(sink, detailed=True))  # as /health shows it
    assert report.details["security_protocol"] == "SASL_SSL"
