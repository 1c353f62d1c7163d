"""API keys: 401 without a valid key, 403 without rights on the dataset, open when none are set."""

from __future__ import annotations

import logging

import pytest

from tests.support.data_in import envelope_of, ingest_request
from tornado_ingest.auth import hash_key
from tornado_ingest.config import parse_config
from tornado_ingest.logs import TextFormatter

WRITER_KEY = "writer-key-123"
OPS_KEY = "ops-key-456"


@pytest.fixture
def config_document(config_document, monkeypatch):
    monkeypatch.setenv("OPS_API_KEY", OPS_KEY)
    config_document["auth"] = {
        "keys": [
            {"name": "writer", "sha256": hash_key(WRITER_KEY), "datasets": ["events"]},
            {"name": "ops", "env": "OPS_API_KEY"},
        ]
    }
    return config_document


def with_key(**headers):
    return {"Content-Type": "application/json", **headers}


@pytest.mark.gen_test
async def test_missing_key_is_401(post, memory_sink):
    response = await post("/v2/data/in/events", ingest_request())
    envelope = envelope_of(response)
    assert (
        response.code == 401
        and envelope["responseCode"] == "UNAUTHORIZED"
        and envelope["error"]["code"] == "UNAUTHORIZED"
    )
    assert "Authorization: Bearer" in envelope["error"]["message"]
    assert not memory_sink.records


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "wrong"},
        {"Authorization": "Basic " + WRITER_KEY},
        {"Authorization": "Bearer "},
    ],
)
@pytest.mark.gen_test
async def test_wrong_key_is_401(post, headers):
    response = await post("/v2/data/in/events", ingest_request(), headers=with_key(**headers))
    assert response.code == 401
    assert WRITER_KEY.encode() not in response.body


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer " + WRITER_KEY}, {"authorization": "bearer " + WRITER_KEY}, {"X-API-Key": WRITER_KEY}],
)
@pytest.mark.gen_test
async def test_a_key_writes_where_it_may(post, memory_sink, headers):
    assert (await post("/v2/data/in/events", ingest_request(), headers=with_key(**headers))).code == 200
    assert len(memory_sink.records) == 1


@pytest.mark.gen_test
async def test_a_key_without_rights_on_the_dataset_is_403(post, tmp_path):
    response = await post("/v2/data/in/example", ingest_request(), headers=with_key(**{"X-API-Key": WRITER_KEY}))
    envelope = envelope_of(response)
    assert response.code == 403 and envelope["error"]["code"] == "FORBIDDEN" and envelope["responseCode"] == "FORBIDDEN"
    assert "'writer'" in envelope["error"]["message"] and WRITER_KEY not in envelope["error"]["message"]
    assert not (tmp_path / "data" / "example.jsonl").exists()


@pytest.mark.gen_test
async def test_a_key_from_the_environment_may_write_everywhere(post):
    for dataset in ("events", "example"):
        assert (
            await post(
                "/v2/data/in/%s" % dataset, ingest_request(), headers=with_key(Authorization="Bearer " + OPS_KEY)
            )
        ).code == 200


@pytest.mark.gen_test
async def test_health_and_ready_stay_open(http_client, base_url):
    assert (await http_client.fetch(base_url + "/health")).code == 200
    assert (await http_client.fetch(base_url + "/ready")).code == 200


def test_the_start_log_says_whether_the_endpoint_is_open(io_loop, config, config_document, caplog):
    from tornado_ingest.app import make_app

    caplog.set_level(logging.INFO)
    for document, expected in (
        (config_document, "API keys required"),
        ({k: v for k, v in config_document.items() if k != "auth"}, "no API keys configured"),
    ):
        app = make_app(parse_config(document))
        io_loop.run_sync(app.start)
        io_loop.run_sync(app.close)
        assert expected in caplog.text
    assert OPS_KEY not in caplog.text and WRITER_KEY not in caplog.text


@pytest.mark.gen_test
async def test_the_access_log_names_the_key_and_never_shows_query_values(post, caplog):
    caplog.set_level(logging.INFO, logger="tornado.access")
    response = await post(
        "/v2/data/in/events?api_key=s3cret-in-url&x=1", ingest_request(), headers=with_key(**{"X-API-Key": WRITER_KEY})
    )
    assert response.code == 200
    [record] = [record for record in caplog.records if record.name == "tornado.access"]
    assert "/v2/data/in/events?api_key=***&x=***" in record.getMessage() and record.access["key"] == "writer"
    assert TextFormatter().format(record).endswith(" remote=127.0.0.1")  # the fields follow the message
    assert "s3cret-in-url" not in caplog.text
