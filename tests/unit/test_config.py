"""Config: defaults, ${VAR} interpolation, and one-line errors naming the key path."""

from __future__ import annotations

import os

import pytest

from sinks.file import FileSink
from sinks.memory import MemorySink
from tests.support.service import ROOT
from tornado_ingest.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, load_yaml, parse_config


def minimal(**datasets):
    return {
        "sinks": {"local": {"type": "file", "directory": "data"}, "rabbit": {"type": "memory"}},
        "datasets": datasets or {"example": {"sink": "local", "entry_topic": "example"}},
    }


def config_error(document) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_defaults():
    config = parse_config(minimal())
    assert (config.server.port, config.server.address, config.server.max_body_bytes) == (
        3000,
        "0.0.0.0",
        10 * 1024 * 1024,
    )
    assert config.server.retry_after == 5 and config.server.drain_timeout == 30.0
    dataset = config.datasets["example"]
    assert (dataset.extraction_key, dataset.dedup_key, dataset.key_path) == ("events", "id", ())
    assert config.sinks["local"].cls is FileSink and config.sinks["rabbit"].cls is MemorySink
    assert config.sinks["local"].options == {"directory": "data", "fsync": False}  # defaults filled in, once


def test_the_packaged_default_serves_example_into_data(monkeypatch):
    for name in ("PORT", "ADDRESS", "INGEST_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    config = load_config()
    assert config.source == DEFAULT_CONFIG_PATH
    assert config.server.port == 3000
    assert config.datasets["example"].entry_topic == "example"
    assert config.sinks[config.datasets["example"].sink].options["directory"] == "data"


def test_the_example_config_in_conf_is_valid(monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("RABBITMQ_URL", raising=False)
    path = os.path.join(ROOT, "conf", "datasets.yaml")
    config = load_config(path)
    assert "example" in config.datasets


def test_dataset_key_path_and_custom_keys():
    config = parse_config(
        minimal(
            t={"sink": "rabbit", "entry_topic": "t", "key": "event.did", "extraction_key": "items", "dedup_key": "bid"}
        )
    )
    dataset = config.datasets["t"]
    assert dataset.key_path == ("event", "did")
    assert (dataset.extraction_key, dataset.dedup_key) == ("items", "bid")


def test_dataset_without_entry_topic_is_allowed():
    assert parse_config(minimal(later={"sink": "rabbit"})).datasets["later"].entry_topic is None


@pytest.mark.parametrize(
    "document, expected",
    [
        (
            minimal(orders={"sink": "rabit", "entry_topic": "o"}),
            "datasets.orders.sink: no sink named 'rabit' (did you mean 'rabbit'?)",
        ),
        (
            {"sinks": {"q": {"type": "rabbitmg"}}, "datasets": {}},
            "sinks.q.type: no sink type named 'rabbitmg' (did you mean 'rabbitmq'?)",
        ),
        ({"sinks": {"q": {"type": "nosuch"}}, "datasets": {}}, "sinks.q.type: no sink type named 'nosuch' (known: "),
        ({"sinks": {"q": {"directory": "x"}}, "datasets": {}}, "sinks.q.type: is required"),
        ({"sinks": {"q": {"type": "file"}}, "datasets": {}}, "sinks.q.directory: is required"),
        (
            {"sinks": {"q": {"type": "file", "directory": "d", "fsinc": True}}, "datasets": {}},
            "sinks.q.fsinc: unknown key (did you mean 'fsync'?)",
        ),
        ({"sinks": {"q": {"type": "file", "directory": "d", "fsync": "maybe"}}, "datasets": {}}, "sinks.q.fsync:"),
        (
            minimal(x={"sink": "local", "entry_topic": "../../etc/passwd"}),
            "datasets.x.entry_topic: '../../etc/passwd' is not a plain file name",
        ),
        (minimal(x={"sink": "local", "entry_topic": "a/b"}), "datasets.x.entry_topic:"),
        (minimal(x={"sink": "local", "entry_topic": ".."}), "datasets.x.entry_topic:"),
        (minimal(x={"sink": "local", "entry_topic": "t", "topic": "y"}), "datasets.x.topic: unknown key"),
        (minimal(x={"entry_topic": "t"}), "datasets.x.sink: is required"),
        (
            minimal(x={"sink": "local", "entry_topic": "t", "extraction_key": "msgid"}),
            "datasets.x.extraction_key: 'msgid' is already a field",
        ),
        (
            minimal(x={"sink": "local", "entry_topic": "t", "dedup_key": "events"}),
            "datasets.x.dedup_key: must differ from extraction_key",
        ),
        (
            minimal(x={"sink": "local", "entry_topic": "t", "key": "event..did"}),
            "datasets.x.key: expected a dotted path",
        ),
        ({**minimal(), "server": {"prot": 80}}, "server.prot: unknown key (did you mean 'port'?)"),
        ({**minimal(), "server": {"port": "eighty"}}, "server.port: expected a port number"),
        ({**minimal(), "server": {"port": 70000}}, "server.port: expected a port number"),
        ({**minimal(), "server": {"max_body_bytes": 0}}, "server.max_body_bytes:"),
        ({**minimal(), "server": {"event_loop": "trio"}}, "server.event_loop: expected auto, asyncio, uvloop"),
        ({**minimal(), "sink": {}}, "sink: unknown key (did you mean 'sinks'?)"),
        ({"datasets": {}}, "sinks: is required"),
        ({"sinks": {}, "datasets": {}}, "sinks: define at least one sink"),
        ({"sinks": [], "datasets": {}}, "sinks:"),
        ([1, 2], "the config must be a mapping"),
        (None, "the config is empty"),
    ],
)
def test_errors_name_the_key_path(document, expected):
    assert expected in config_error(document)


def test_environment_interpolation(monkeypatch):
    monkeypatch.setenv("INGEST_PORT", "8080")
    monkeypatch.setenv("EMPTY", "")
    monkeypatch.delenv("UNSET_DIR", raising=False)
    document = minimal()
    document["server"] = {"port": "${INGEST_PORT}", "address": "${EMPTY:-127.0.0.1}"}
    document["sinks"]["local"]["directory"] = "/srv/${UNSET_DIR:-ingest}/$${literal}"
    config = parse_config(document)
    assert config.server.port == 8080
    assert config.server.address == "127.0.0.1"
    assert config.sinks["local"].options["directory"] == "/srv/ingest/${literal}"


def test_unset_variable_without_default_names_variable_and_key(monkeypatch):
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    document = minimal()
    document["sinks"]["local"]["directory"] = "${NO_SUCH_VAR}"
    message = config_error(document)
    assert message.startswith("sinks.local.directory: environment variable NO_SUCH_VAR is not set")


@pytest.mark.parametrize(
    "text, expected",
    [
        (b"sinks: {local: {type: file\n", "broken YAML"),
        (b"sinks:\n  a: 1\n  a: 2\n", "line 3, column 3: broken YAML: duplicate key 'a'"),
        (b"key: [unclosed\n", "broken YAML"),
    ],
)
def test_broken_yaml(text, expected):
    with pytest.raises(ConfigError) as caught:
        load_yaml(text)
    assert expected in str(caught.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "missing.yaml"))
    assert "cannot read config" in str(caught.value)


def test_event_loop_uvloop_without_uvloop_names_the_key_and_the_extra(monkeypatch):
    from tornado_ingest import event_loop

    monkeypatch.setattr(event_loop, "uvloop_installed", lambda: False)
    message = config_error({**minimal(), "server": {"event_loop": "uvloop"}})
    assert "server.event_loop: uvloop is not installed: pip install 'tornado-ingest[speedups]'" in message
    assert parse_config({**minimal(), "server": {"event_loop": "auto"}}).server.event_loop == "auto"
    assert event_loop.describe("auto") == "asyncio (uvloop is not installed)"
