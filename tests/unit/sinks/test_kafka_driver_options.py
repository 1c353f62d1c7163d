"""The Kafka sink's ``driver`` option, and ``producer`` options checked and mapped for ``driver: confluent``.

Without confluent-kafka these fail in CI (``CI=true``) and skip elsewhere.
"""

from __future__ import annotations

import pytest

from tests.support import installed_or_skip
from tornado_ingest.config import ConfigError, parse_config


@pytest.fixture(autouse=True)
def confluent_kafka():
    return installed_or_skip("confluent_kafka", "confluent")


def config_with(sink):
    return {"sinks": {"bus": dict({"type": "kafka"}, **sink)}, "datasets": {"d": {"sink": "bus", "entry_topic": "t"}}}


def confluent(**producer):
    return parse_config(config_with({"driver": "confluent", "producer": producer})).sinks["bus"].build()


def test_the_default_driver_is_kafka_python():
    sink = parse_config(config_with({})).sinks["bus"].build()
    assert sink.driver_name == "kafka-python"
    assert "linger_ms" in sink.producer_config  # KafkaProducer's names
    assert "driver" not in sink.health().details


@pytest.mark.parametrize("written, says", [("confluence", "did you mean 'confluent'"), ("rdkafka", "expected")])
def test_a_driver_that_does_not_exist_is_a_config_error_naming_the_key(written, says):
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with({"driver": written}))
    assert caught.value.path == "sinks.bus.driver"
    assert "expected kafka-python or confluent" in caught.value.reason
    assert says in caught.value.reason


def test_confluent_defaults_behave_as_the_kafka_python_driver():
    sink = confluent()
    config = sink.producer_config
    assert config["bootstrap.servers"] == "localhost:9092"
    assert (config["acks"], config["linger.ms"], config["enable.idempotence"]) == ("all", 2, True)
    assert "batch.size" not in config  # librdkafka's own 1 MB (kafka-python's driver sets 256 KB)
    assert config["partitioner"] == "murmur2_random"  # kafka-python's: the same key lands on the same partition
    assert config["message.timeout.ms"] == 120000  # kafka-python's delivery_timeout_ms
    assert config["client.id"] == "tornado-ingest-bus"
    assert sink.health().details["driver"] == "confluent"


def test_producer_options_keep_kafka_python_names_and_are_mapped():
    sink = confluent(
        acks=1,
        enable_idempotence="false",
        linger_ms="20",
        batch_size=32768,
        max_request_size=2000,
        compression_type="zstd",
        delivery_timeout_ms=30000,
        allow_auto_create_topics=False,
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        sasl_plain_password="hunter2",
        ssl_check_hostname=False,
        buffer_memory=33554432,
        api_version="2.3",
    )
    config = sink.producer_config
    assert config["acks"] == "1"
    assert config["enable.idempotence"] is False
    assert config["linger.ms"] == 20
    assert (config["batch.size"], config["message.max.bytes"]) == (32768, 2000)
    assert config["compression.type"] == "zstd"
    assert config["message.timeout.ms"] == 30000
    assert config["allow.auto.create.topics"] is False
    assert (config["security.protocol"], config["sasl.mechanism"]) == ("SASL_SSL", "PLAIN")
    assert (config["sasl.username"], config["sasl.password"]) == ("alice", "hunter2")
    assert config["ssl.endpoint.identification.algorithm"] == "none"
    assert config["queue.buffering.max.kbytes"] == 32768
    assert "api_version" not in config and "api.version" not in config  # accepted, ignored
    report = sink.health()
    assert report.details["security_protocol"] == "SASL_SSL"
    assert "hunter2" not in repr(report)


@pytest.mark.parametrize(
    "producer, path, says",
    [
        ({"max_block_ms": 1000}, "sinks.bus.producer.max_block_ms", "has no meaning with driver: confluent"),
        ({"transactional_id": "t"}, "sinks.bus.producer.transactional_id", "has no meaning"),
        ({"lingr_ms": 5}, "sinks.bus.producer.lingr_ms", "did you mean 'linger_ms'"),
        ({"metric_reporters": []}, "sinks.bus.producer.metric_reporters", "unknown producer option"),
        ({"linger_ms": "soon"}, "sinks.bus.producer.linger_ms", "expected a whole number"),
        ({"enable_idempotence": "maybe"}, "sinks.bus.producer.enable_idempotence", "expected true or false"),
        ({"compression_type": "gzp"}, "sinks.bus.producer.compression_type", "expected one of"),
        ({"acks": "some"}, "sinks.bus.producer.acks", "expected all, 0, 1 or -1"),
        ({"acks": 1}, "sinks.bus.producer.acks", "set enable_idempotence: false"),
        ({"api_version": "two"}, "sinks.bus.producer.api_version", "broker version"),
        ({"bootstrap_servers": "h:1"}, "sinks.bus.producer.bootstrap_servers", "beside producer"),
        ({"client_id": 7}, "sinks.bus.producer.client_id", "expected a string"),
        ({"delivery_timeout_ms": 2}, "sinks.bus.producer.delivery_timeout_ms", "more than linger_ms (2)"),
    ],
)
def test_bad_producer_options_for_confluent_are_config_errors(producer, path, says):
    with pytest.raises(ConfigError) as caught:
        confluent(**producer)
    assert caught.value.path == path
    assert says in caught.value.reason


def test_every_mapped_option_is_a_property_librdkafka_takes():
    """A Producer is built (no broker needed) with every mapped property: librdkafka refuses unknown names."""
    from sinks.kafka import confluent_compat, confluent_options

    values = {"int": 1000, "bool": True, "str": "x"}
    samples = {"acks": "all", "compression_type": "gzip", "ssl_check_hostname": True, "buffer_memory": 1 << 20}
    samples.update(
        max_in_flight_requests_per_connection=5, retries=5, request_timeout_ms=1000, delivery_timeout_ms=9000
    )
    samples.update(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", ssl_cafile=None, ssl_certfile=None)
    samples.update(ssl_keyfile=None, ssl_crlfile=None, ssl_password=None, sasl_kerberos_service_name=None)
    config = dict(confluent_options.DEFAULTS, **{"bootstrap.servers": "127.0.0.1:1"})
    for name, (prop, kind) in confluent_options.MAPPED.items():
        value = samples.get(name, values.get(kind))
        if value is not None:
            config[prop] = kind(value) if callable(kind) else value
    assert set(config) >= {prop for prop, _ in confluent_options.MAPPED.values()} - {
        "ssl.ca.location",
        "ssl.certificate.location",
        "ssl.key.location",
        "ssl.crl.location",
        "ssl.key.password",
        "sasl.kerberos.service.name",
    }  # files that must exist, and Kerberos (a librdkafka built with it): named only
    confluent_compat.build_producer(config).flush(0)  # raises KafkaException for a property it does not know
