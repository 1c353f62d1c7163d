"""Metrics from a real service: with --processes 2 any scrape answers for both workers; the management port."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.support.data_in import REFERENCE_REQUEST

CONFIG = "server: {management_port: 0}\nsinks: {m: {type: memory}}\ndatasets: {example: {sink: m, entry_topic: e}}\n"


def ok_requests(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tornado_ingest_requests_total" and sample.labels.get("code") == "OK":
                return sample.value
    return 0.0


def test_with_two_workers_every_scrape_counts_the_whole_service(service_factory):
    service = service_factory("--port", "0", "--address", "127.0.0.1", "--processes", "2", config=CONFIG)
    management = int(service.wait_for(r"management listener on \S+ port (\d+)").group(1))
    for _ in range(2):
        service.wait_for("sink 'm' started")
    served_by = set()
    sent = 0
    while len(served_by) < 2 and sent < 400:  # new connections until both workers have answered some
        assert service.post("/v2/data/in/example", REFERENCE_REQUEST)[0] == 200
        sent += 1
        served_by.add(service.wait_for(r" (\d+) INFO tornado.access: 200 POST").group(1))
    assert len(served_by) == 2, "one worker took every connection"
    for _ in range(10):  # whichever worker answers the scrape, it counts both
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % management, timeout=5) as response:
            assert ok_requests(response.read().decode()) == sent
    assert service.stop() == 0


def test_the_management_listener_serves_metrics_health_and_ready_only(service_factory):
    service = service_factory("--port", "0", "--address", "127.0.0.1", config=CONFIG)
    management = int(service.wait_for(r"management listener on \S+ port (\d+)").group(1))
    base = "http://127.0.0.1:%d" % management
    for path in ("/metrics", "/health", "/ready"):
        with urllib.request.urlopen(base + path, timeout=5) as response:
            assert response.status == 200
    try:
        urllib.request.urlopen(urllib.request.Request(base + "/v2/data/in/example", data=b"{}"), timeout=5)
        raise AssertionError("the management listener took an ingest request")
    except urllib.error.HTTPError as error:
        assert error.code == 404
    assert service.stop() == 0
