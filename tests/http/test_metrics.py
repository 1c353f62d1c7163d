"""/metrics: real scrapes, parsed with prometheus_client's own parser; labels stay bounded whatever clients send."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sinks.base import SinkUnavailable
from tests.support.data_in import ingest_request


def samples(text: str) -> dict:
    """``{(name, frozenset(labels)): value}`` of a scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(scrape: dict, name: str, **labels) -> float:
    return scrape.get(("tornado_ingest_" + name, frozenset(labels.items())), 0.0)


async def scrape(http_client, url):
    response = await http_client.fetch(url + "/metrics")
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return samples(response.body.decode())


@pytest.mark.gen_test
async def test_requests_events_bytes_and_outcomes_are_counted(post, http_client, base_url, memory_sink):
    for i in range(3):
        assert (await post("/v2/data/in/events", ingest_request([{"n": i}, {"n": i}]))).code == 200
    assert (await post("/v2/data/in/events", b"{oops")).code == 400
    assert (await post("/v2/data/in/no-such-dataset", ingest_request())).code == 404
    memory_sink.failure = SinkUnavailable("down")
    assert (await post("/v2/data/in/events", ingest_request())).code == 503
    found = await scrape(http_client, base_url)
    assert value(found, "requests_total", dataset="events", code="OK", status="2xx") == 3
    assert value(found, "requests_total", dataset="events", code="DATA_INGESTION_INVALID_INPUT", status="4xx") == 1
    assert value(found, "requests_total", dataset="(unknown)", code="DATASET_NOT_FOUND", status="4xx") == 1
    assert value(found, "requests_total", dataset="events", code="SINK_UNAVAILABLE", status="5xx") == 1
    assert value(found, "events_total", dataset="events", sink="mem") == 6
    assert value(found, "record_bytes_total", dataset="events", sink="mem") == sum(
        len(r.value) for _, r in memory_sink.records
    )
    assert value(found, "sink_refusals_total", sink="mem", status="503") == 1
    assert value(found, "request_duration_seconds_count", dataset="events") == 5
    assert value(found, "sink_ack_duration_seconds_count", sink="mem") == 3
    assert value(found, "sink_max_inflight", sink="mem") == 1000
    assert value(found, "sink_records_in_flight", sink="mem") == 0
    assert value(found, "sink_up", sink="mem") == 0 and value(found, "sink_up", sink="local") == 1
    assert any(name == "tornado_ingest_build_info" for name, _ in found)
    assert any(name == "tornado_ingest_config_info" and value == 1 for (name, _), value in found.items())


@pytest.mark.gen_test
async def test_label_values_never_come_from_clients(post, http_client, base_url):
    for _ in range(20):
        await post("/v2/data/in/%s" % uuid.uuid4().hex, ingest_request())
        await http_client.fetch(base_url + "/%s?size=%s" % (uuid.uuid4().hex, uuid.uuid4().hex), raise_error=False)
    datasets = {dict(labels).get("dataset") for _, labels in await scrape(http_client, base_url)} - {None}
    assert datasets <= {"events", "custom", "example", "no-topic", "(unknown)", "(none)"}, datasets


class TestWithKeys:
    @pytest.fixture
    def config_document(self, config_document, monkeypatch):
        monkeypatch.setenv("METRICS_TEST_KEY", "k-1")
        config_document["auth"] = {"keys": [{"name": "scraper", "env": "METRICS_TEST_KEY", "datasets": []}]}
        return config_document

    @pytest.mark.gen_test
    async def test_metrics_need_a_key_on_the_ingest_port_and_none_on_the_management_port(
        self, http_client, base_url, management_url
    ):
        refused = await http_client.fetch(base_url + "/metrics", raise_error=False)
        assert refused.code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        keyed = await http_client.fetch(base_url + "/metrics", headers={"Authorization": "Bearer k-1"})
        assert keyed.code == 200
        assert (await http_client.fetch(management_url + "/metrics")).code == 200
        assert (await http_client.fetch(management_url + "/v2/data/in/events", raise_error=False)).code == 404
