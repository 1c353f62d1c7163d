"""``spool`` in the broker sinks' options: checked at load, errors naming the key; the file sink has none."""

from __future__ import annotations

import pytest

from sinks.spool.options import byte_size
from tornado_ingest.config import ConfigError, parse_config


def config_with(sink):
    return {"sinks": {"bus": sink}, "datasets": {"d": {"sink": "bus", "entry_topic": "t"}}}


BROKERS = [
    pytest.param({"type": "kafka", "bootstrap_servers": "localhost:9092"}, id="kafka"),
    pytest.param({"type": "rabbitmq"}, id="rabbitmq"),
]


@pytest.mark.parametrize("sink", BROKERS)
def test_a_broker_sink_takes_a_spool_with_its_defaults(sink):
    config = parse_config(config_with(dict(sink, spool={"directory": "/var/spool/ingest"})))
    assert config.sinks["bus"].options["spool"] == {
        "directory": "/var/spool/ingest",
        "max_bytes": 1 << 30,
        "fsync": "batch",
        "replay_rate": 10000,
    }
    assert parse_config(config_with(sink)).sinks["bus"].options["spool"] is None


@pytest.mark.parametrize("sink", BROKERS)
@pytest.mark.parametrize(
    "spool, message",
    [
        ({}, "sinks.bus.spool.directory: is required"),
        ({"directory": "s", "max_byte": 5}, "sinks.bus.spool.max_byte: unknown key (did you mean 'max_bytes'?)"),
        ({"directory": "s", "max_bytes": "lots"}, "sinks.bus.spool.max_bytes: expected a size in bytes"),
        ({"directory": "s", "max_bytes": 1000}, "sinks.bus.spool.max_bytes: expected at least 1MiB"),
        ({"directory": "s", "fsync": "never"}, "sinks.bus.spool.fsync: expected batch or always"),
        ({"directory": "s", "replay_rate": 0}, "sinks.bus.spool.replay_rate: expected a positive number"),
        ("s", "sinks.bus.spool: expected a mapping"),
    ],
)
def test_a_bad_spool_stops_the_service_with_one_line_naming_the_key(sink, spool, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(dict(sink, spool=spool)))
    assert str(caught.value).startswith(message)


def test_the_file_sink_has_nothing_to_spool_to():
    with pytest.raises(ConfigError, match="sinks.bus.spool: unknown key"):
        parse_config(config_with({"type": "file", "directory": "d", "spool": {"directory": "s"}}))


@pytest.mark.parametrize(
    "written, size",
    [(1 << 20, 1 << 20), ("512MiB", 512 << 20), ("2 GiB", 2 << 30), ("10GB", 10**10), ("1.5MiB", 3 << 19)],
)
def test_sizes_are_bytes_or_a_number_with_a_unit(written, size):
    assert byte_size(written) == size
