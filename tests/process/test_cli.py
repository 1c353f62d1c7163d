"""The command line: check-config, hash-key, serving the embedded default, and a clean SIGTERM."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import pytest

from tests.support import skip_or_fail
from tests.support.data_in import REFERENCE_REQUEST
from tests.support.service import ROOT, run
from tornado_ingest.auth import hash_key


def test_embedded_default_answers_the_reference_example(service_factory, tmp_path):
    service = service_factory("--port", "0", "--address", "127.0.0.1")
    status, envelope = service.post("/v2/data/in/example", REFERENCE_REQUEST)
    assert status == 200
    assert envelope["params"]["status"] == "SUCCESS"
    assert envelope["params"]["msgid"] == REFERENCE_REQUEST["params"]["msgid"]
    assert envelope["result"] == {"message": "Data ingested successfully"}
    record = json.loads((tmp_path / "data" / "example.jsonl").read_text())
    assert record["event"] == REFERENCE_REQUEST["data"]
    assert service.stop() == 0
    service.wait_for("sinks closed")


def test_console_script(service_factory, tmp_path):
    script = shutil.which("tornado-ingest")
    if script is None:
        skip_or_fail("the tornado-ingest console script is not installed here (pip install .)")
    service = service_factory(argv=[script, "--port", "0", "--address", "127.0.0.1"])
    assert service.post("/v2/data/in/example", REFERENCE_REQUEST)[0] == 200
    assert service.stop() == 0


def test_flags_override_the_config_file(service_factory, tmp_path):
    config = (
        "server: {port: 1, address: 10.255.255.1}\n"
        "sinks: {m: {type: memory}}\n"
        "datasets: {example: {sink: m, entry_topic: e}}\n"
    )
    service = service_factory("--port", "0", "--address", "127.0.0.1", config=config)
    assert service.post("/v2/data/in/example", REFERENCE_REQUEST)[0] == 200
    assert service.stop() == 0


def test_check_config_accepts_a_good_file(tmp_path):
    result = run("check-config", os.path.join(ROOT, "conf", "datasets.yaml"))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "sinks: {a: {type: rabit}}\ndatasets: {}\n",
            "sinks.a.type: no sink type named 'rabit' (did you mean 'rabbitmq'?)",
        ),
        (
            "sinks: {a: {type: memory}}\ndatasets: {x: {sink: b, entry_topic: t}}\n",
            "datasets.x.sink: no sink named 'b'",
        ),
        (
            "sinks: {a: {type: file, directory: d}}\ndatasets: {x: {sink: a, entry_topic: ../up}}\n",
            "datasets.x.entry_topic:",
        ),
        ("sinks: [unclosed\n", "broken YAML"),
        ("sinks: {a: {type: 'os:path'}}\ndatasets: {}\n", "sinks.a.type: sink type 'os:path': os:path is not a sink"),
        (
            'sinks:\n  a: {type: memory, path: "${NOT_SET_ANYWHERE}"}\ndatasets: {}\n',
            "sinks.a.path: environment variable NOT_SET_ANYWHERE is not set",
        ),
    ],
)
def test_bad_config_is_one_line_and_a_nonzero_exit(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for args in (("check-config", str(path)), ("--config", str(path), "--port", "0")):
        result = run(*args)
        assert result.returncode == 2
        assert expected in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "flags, expected",
    [
        (("--port", "70000"), "bad flag --port 70000: expected a port number (0-65535)"),
        (("--port", "eighty"), "bad flag --port eighty: expected a port number (0-65535)"),
        (("--processes", "-1"), "bad flag --processes -1: expected a number of processes (0: one per core)"),
        (("--event-loop", "trio"), "bad flag --event-loop trio: expected auto, asyncio, uvloop"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(tmp_path, flags, expected):
    result = run(*flags, "--address", "127.0.0.1", cwd=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == "tornado-ingest: %s\n" % expected


def test_missing_config_file(tmp_path):
    result = run("check-config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "cannot read config" in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = run("--port", str(taken.getsockname()[1]), "--address", "127.0.0.1", cwd=str(tmp_path))
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr


def test_hash_key_command():
    result = run("hash-key", input="s3cret\n")
    assert result.returncode == 0 and result.stdout.strip() == hash_key("s3cret")
    new = run("hash-key", "--new")
    key = new.stdout.split("key:")[1].split()[0]
    digest = new.stdout.split("sha256:")[1].split()[0]
    assert len(key) >= 40 and digest == hash_key(key)


def test_log_format_json_is_one_object_per_line(service_factory):
    service = service_factory("--port", "0", "--address", "127.0.0.1", "--log-format", "json", "--log-level", "info")
    status, _ = service.post(
        "/v2/data/in/example", REFERENCE_REQUEST, headers={"Content-Type": "application/json", "X-Request-ID": "r-json"}
    )
    assert status == 200
    service.wait_for('"request_id":"r-json"')
    assert service.stop() == 0
    entries = [json.loads(line) for line in service.log]
    [access] = [entry for entry in entries if entry["logger"] == "tornado.access"]
    assert access["msgid"] == REFERENCE_REQUEST["params"]["msgid"] and access["status"] == 200
    assert access["dataset"] == "example" and access["events"] == 1 and access["bytes"] > 0
    assert {"time", "level", "message", "method", "path", "duration_ms", "remote"} <= set(access)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "auto"])
def test_the_event_loop_serves_and_drains(service_factory, tmp_path, loop):
    if loop != "asyncio" and importlib.util.find_spec("uvloop") is None:
        skip_or_fail("uvloop is not installed here (the speedups extra)")
    service = service_factory("--port", "0", "--address", "127.0.0.1", "--event-loop", loop)
    assert "event loop: %s" % ("asyncio" if loop == "asyncio" else "uvloop") in "".join(service.log)
    assert service.post("/v2/data/in/example", REFERENCE_REQUEST)[0] == 200
    assert service.stop() == 0
    service.wait_for("sinks closed")
    assert json.loads((tmp_path / "data" / "example.jsonl").read_text())["event"] == REFERENCE_REQUEST["data"]
