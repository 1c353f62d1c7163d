"""The OpenAPI document is valid, and the running service keeps to it (schemathesis, every check).

Run by ``tox -e api`` (it installs openapi-spec-validator and schemathesis); the
other environments leave this folder out (see tests/conftest.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request

import pytest
from openapi_spec_validator import validate

from tests.support import skip_or_fail
from tornado_ingest import openapi

KEY = "api-test-key"


def test_the_document_is_valid_openapi_3_1():
    validate(openapi.document())


def schemathesis(url, *options, config=None, tmp_path=None):
    command = shutil.which("st")
    if command is None:
        skip_or_fail("schemathesis is not installed (tox -e api installs it)")
    arguments = [command]
    if config is not None:
        path = tmp_path / "schemathesis.toml"
        path.write_text(config)
        arguments += ["--config-file", str(path)]
    arguments += ["run", url + "/openapi.json", "--checks", "all", "--max-examples", "100", "--workers", "1", *options]
    result = subprocess.run(arguments, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize(
    "config",
    [
        None,  # any dataset id: the 404s
        '[parameters]\n"path.dataset_id" = "example"\n',  # the configured dataset: the 200s and the 4xx of bodies
    ],
    ids=["any dataset", "the example dataset"],
)
def test_the_running_service_keeps_to_its_document(service_factory, tmp_path, config):
    service = service_factory("--port", "0", "--address", "127.0.0.1")
    url = "http://127.0.0.1:%d" % service.port
    served = json.loads(urllib.request.urlopen(url + "/openapi.json", timeout=5).read())
    assert served == openapi.document()
    output = schemathesis(url, config=config, tmp_path=tmp_path)
    assert "passed" in output
    assert service.stop() == 0


def test_with_api_keys_too(service_factory, tmp_path, monkeypatch):
    config = (
        "sinks: {local: {type: file, directory: data}}\n"
        "datasets: {example: {sink: local, entry_topic: example}}\n"
        "auth: {keys: [{name: fuzzer, env: FUZZ_KEY}]}\n"
    )
    monkeypatch.setenv("FUZZ_KEY", KEY)  # the service's environment is this process's
    service = service_factory("--port", "0", "--address", "127.0.0.1", config=config)
    url = "http://127.0.0.1:%d" % service.port
    schemathesis(url, config='[parameters]\n"path.dataset_id" = "example"\n', tmp_path=tmp_path)  # no key: 401s
    schemathesis(
        url, "-H", "X-API-Key: " + KEY, config='[parameters]\n"path.dataset_id" = "example"\n', tmp_path=tmp_path
    )
    assert service.stop() == 0
