"""Fixtures only: a config with a file sink and a memory sink, the app, ways to post to it, the service as a process.

The helpers behind them are in ``tests/support``. Each test folder is one kind of
test and carries its marker, so kinds run apart (``pytest -m unit``, ``pytest tests/http``):
``unit`` (no server, no broker), ``http`` (the contract through Tornado's test client),
``broker`` (real RabbitMQ, Redis, Kafka's mock cluster), ``process`` (the service as a child process),
``replicas`` (several services behind a real HAProxy) and
``api`` (the OpenAPI document against the running service: ``tox -e api``).
"""

from __future__ import annotations

import json
import os

import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from tests.support import service as service_process
from tests.support.data_in import JSON_HEADERS, body_of
from tornado_ingest.app import make_app, make_management_app
from tornado_ingest.config import parse_config

FOLDER_MARKERS = {
    "unit": "unit",
    "http": "http",
    "brokers": "broker",
    "process": "process",
    "api": "api",
    "replicas": "replicas",
}
# tests/api needs schemathesis and openapi-spec-validator: `tox -e api` installs them and sets RUN_API_TESTS.
collect_ignore_glob = [] if os.environ.get("RUN_API_TESTS") else ["api/*"]


def pytest_collection_modifyitems(items):
    tests_folder = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        folder = os.path.relpath(str(item.path), tests_folder).split(os.sep)[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])


def pytest_terminal_summary(terminalreporter):
    """The figures the failover and load-balancer tests record (``record_property("figures", ...)``), at the end."""
    figures = [
        value
        for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed")
        for name, value in getattr(report, "user_properties", ())
        if name == "figures"
    ]
    if figures:
        terminalreporter.section("figures")
        for line in figures:
            terminalreporter.write_line(line)


@pytest.fixture
def service_factory(tmp_path):
    """Start the service as a child process (in ``tmp_path``); every one started is killed at the end.

    ``config``: YAML text, written to a file the service is started with (``--config``).
    """
    started = []

    def start(*args, config=None, argv=None):
        if config is not None:
            path = tmp_path / ("config-%d.yaml" % len(started))
            path.write_text(config)
            args = ("--config", str(path)) + args
        service = service_process.Service(args, cwd=str(tmp_path), argv=argv)
        started.append(service)
        return service

    yield start
    for service in started:
        service.kill()


@pytest.fixture
def config_document(tmp_path):
    """The config document the ``app`` is built from; test modules override it to add their sinks."""
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
    """``await post(path, body, headers=None, **fetch_options)``: the response, whatever its status."""

    async def send(path, body, headers=None, **kwargs):
        return await http_client.fetch(
            base_url + path,
            method="POST",
            body=body_of(body),
            headers=JSON_HEADERS if headers is None else headers,
            raise_error=False,
            **kwargs,
        )

    return send


@pytest.fixture
def ingest(post):
    """``await ingest(dataset, body, headers=None, **fetch_options)``: a POST to ``/v2/data/in/<dataset>``."""

    async def send(dataset, body, headers=None, **kwargs):
        return await post("/v2/data/in/" + dataset, body, headers=headers, **kwargs)

    return send


@pytest.fixture
def management_url(app, io_loop):
    """The management listener (``server.management_port``) of the same service, on a port of its own."""
    server = HTTPServer(make_management_app(app.service))
    sock, port = bind_unused_port()
    server.add_sockets([sock])
    yield "http://127.0.0.1:%d" % port
    server.stop()


@pytest.fixture
def health(http_client, management_url):
    """``await health()``: ``/health``'s result as the operator sees it (the sinks in detail)."""

    async def get():
        response = await http_client.fetch(management_url + "/health")
        assert response.code == 200
        return json.loads(response.body)["result"]

    return get
