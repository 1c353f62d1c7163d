"""Shared fixtures: a config with a file sink and a memory sink, and the app."""

from __future__ import annotations

import copy
import json
import os

import pytest

from tests import service_process
from tornado_ingest.app import make_app
from tornado_ingest.config import parse_config

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

REFERENCE_REQUEST = {
    "id": "api.data.in",
    "ver": "v2",
    "ts": "1711966306164",
    "params": {"msgid": "e180ecac-8f41-4f21-9a21-0b3a1a368917"},
    "data": {"eid": "INTERACT", "date": "2022-01-01", "ver": "3.0", "syncts": 1668591949682, "ets": 1668591949682},
}

JSON_HEADERS = {"Content-Type": "application/json"}


def ingest_request(data=None, msgid="m-1", **overrides):
    """A valid data-in request (the reference example unless told otherwise)."""
    request = copy.deepcopy(REFERENCE_REQUEST)
    request["params"]["msgid"] = msgid
    if data is not None:
        request["data"] = data
    request.update(overrides)
    return request


def body_of(value) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


@pytest.fixture
def service_factory(tmp_path):
    started = []

    def start(*args, argv=None):
        service = service_process.Service(args, cwd=str(tmp_path), argv=argv)
        started.append(service)
        return service

    yield start
    for service in started:
        service.kill()


@pytest.fixture
def config_document(tmp_path):
    return {
        "server": {"port": 0, "retry_after": 7},
        "sinks": {
            "local": {"type": "file", "directory": str(tmp_path / "data")},
            "mem": {"type": "memory"},
        },
        "datasets": {
            "example": {"sink": "local", "entry_topic": "example"},
            "events": {"sink": "mem", "entry_topic": "events.raw", "key": "event.did"},
            "custom": {"sink": "mem", "entry_topic": "custom", "extraction_key": "items", "dedup_key": "batch_id"},
            "no-topic": {"sink": "mem"},
        },
    }


@pytest.fixture
def config(config_document):
    return parse_config(config_document, source="test")


@pytest.fixture
def app(io_loop, config):
    application = make_app(config)
    io_loop.run_sync(application.start)
    yield application
    io_loop.run_sync(application.close)


@pytest.fixture
def memory_sink(app):
    return app.sinks["mem"]


@pytest.fixture
def post(http_client, base_url):
    """POST to the app and return the response, whatever its status."""

    async def send(path, value, headers=None, **kwargs):
        return await http_client.fetch(
            base_url + path,
            method="POST",
            body=body_of(value),
            headers=JSON_HEADERS if headers is None else headers,
            raise_error=False,
            **kwargs,
        )

    return send


def envelope_of(response):
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)
