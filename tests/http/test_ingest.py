"""The HTTP contract, row by row: every outcome answered in the one envelope."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import shutil
import uuid

import pytest

from sinks.base import SinkUnavailable
from tests.support.data_in import REFERENCE_REQUEST, body_of, envelope_of, ingest_request
from tests.support.raw_http import exchange

TS_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def assert_envelope(envelope, *, status, response_code, code=None, msgid=None, api_id="api.data.in"):
    assert envelope["id"] == api_id
    assert envelope["ver"] == "v2"
    assert TS_WITH_OFFSET.match(envelope["ts"]), envelope["ts"]
    assert envelope["params"]["status"] == status
    assert uuid.UUID(envelope["params"]["resmsgid"]).version == 4
    assert envelope["responseCode"] == response_code
    if msgid is None:
        assert "msgid" not in envelope["params"]
    else:
        assert envelope["params"]["msgid"] == msgid
    if code is None:
        assert "error" not in envelope
    else:
        assert envelope["result"] == {}
        assert envelope["error"]["code"] == code
        assert envelope["error"]["trace"] == ""
        assert envelope["error"]["message"]
    return envelope


def assert_failure(response, http_status, response_code, code, msgid=None):
    assert response.code == http_status, response.body
    return assert_envelope(envelope_of(response), status="FAILED", response_code=response_code, code=code, msgid=msgid)


def assert_invalid(response, mentions, msgid=None):
    envelope = assert_failure(response, 400, "BAD_REQUEST", "DATA_INGESTION_INVALID_INPUT", msgid)
    assert mentions in envelope["error"]["message"]
    return envelope


async def raw_http(port, request: bytes) -> tuple:
    """Send bytes as they are (no client adds headers); return (status, envelope)."""
    response = await exchange(port, request)
    return response.status, response.envelope


# -- 200 ----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_reference_example_is_ingested_into_the_file(post, tmp_path):
    response = await post("/v2/data/in/example", REFERENCE_REQUEST)
    assert response.code == 200
    envelope = assert_envelope(
        envelope_of(response), status="SUCCESS", response_code="OK", msgid=REFERENCE_REQUEST["params"]["msgid"]
    )
    assert envelope["result"] == {"message": "Data ingested successfully"}
    assert set(envelope) == {"id", "ver", "ts", "params", "responseCode", "result"}
    lines = (tmp_path / "data" / "example.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == REFERENCE_REQUEST["data"]
    assert record["dataset"] == "example"
    assert record["msgid"] == REFERENCE_REQUEST["params"]["msgid"]


@pytest.mark.gen_test
async def test_single_event_record_shape(post, memory_sink):
    response = await post("/v2/data/in/events", ingest_request({"did": "d-7", "x": 1}, msgid="single-1"))
    assert response.code == 200
    [(destination, record)] = memory_sink.records
    assert destination == "events.raw"
    document = json.loads(record.value)
    assert list(document) == ["event", "obsrv_meta", "dataset", "msgid"]
    assert document["event"] == {"did": "d-7", "x": 1}
    assert document["dataset"] == "events" and document["msgid"] == "single-1"
    meta = document["obsrv_meta"]
    assert isinstance(meta["syncts"], int) and meta["syncts"] > 1_600_000_000_000
    assert meta == {
        "syncts": meta["syncts"],
        "flags": {},
        "timespans": {},
        "error": {},
        "source": {"connector": "api", "connectorInstance": "api"},
    }
    assert record.key == b"d-7"
    request_id = response.headers["X-Request-ID"].encode()
    assert record.headers == [("dataset", b"events"), ("msgid", b"single-1"), ("request_id", request_id)]


@pytest.mark.gen_test
async def test_batch_record_shape_with_default_and_custom_keys(post, memory_sink):
    events = [{"n": 1}, {"n": 2}, {"n": 3}]
    assert (await post("/v2/data/in/events", ingest_request(events, msgid="b-1"))).code == 200
    assert (await post("/v2/data/in/custom", ingest_request(events, msgid="b-2"))).code == 200
    default, custom = memory_sink.documents()
    assert list(default) == ["events", "id", "obsrv_meta", "dataset", "msgid"]
    assert default["events"] == events and default["id"] == "b-1" and default["msgid"] == "b-1"
    assert list(custom) == ["items", "batch_id", "obsrv_meta", "dataset", "msgid"]
    assert custom["items"] == events and custom["batch_id"] == "b-2" and custom["dataset"] == "custom"


@pytest.mark.gen_test
async def test_other_top_level_keys_are_ignored(post, memory_sink):
    response = await post("/v2/data/in/events", ingest_request({"a": 1}, extra={"x": 1}))
    assert response.code == 200
    assert "extra" not in memory_sink.documents()[0]


@pytest.mark.gen_test
async def test_missing_content_type_is_read_as_json(http_server, http_port, tmp_path):
    body = body_of(REFERENCE_REQUEST)
    request = b"POST /v2/data/in/example HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    status, envelope = await raw_http(http_port, request)
    assert status == 200 and envelope["params"]["status"] == "SUCCESS"
    assert (tmp_path / "data" / "example.jsonl").exists()


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON"]
)
@pytest.mark.gen_test
async def test_json_content_types_are_accepted(post, content_type):
    response = await post("/v2/data/in/events", ingest_request(), headers={"Content-Type": content_type})
    assert response.code == 200


@pytest.mark.gen_test
async def test_gzip_body_is_accepted(post, memory_sink):
    body = gzip.compress(body_of(ingest_request({"z": 1})))
    response = await post(
        "/v2/data/in/events", body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.code == 200
    assert memory_sink.documents()[0]["event"] == {"z": 1}


@pytest.mark.gen_test
async def test_chunked_body_is_accepted(http_server, app, http_port, memory_sink):
    body = body_of(ingest_request({"chunked": True}))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    request = (
        b"POST /v2/data/in/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    status, _ = await raw_http(http_port, request)
    assert status == 200
    assert memory_sink.documents()[0]["event"] == {"chunked": True}


# -- 400 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, mentions",
    [
        ({"id": "api.other"}, "id: must be 'api.data.in'"),
        ({"id": None}, "id:"),
        ({"ver": 2}, "ver: expected a string"),
        ({"ts": 1711966306164}, "ts: expected a string"),
        ({"params": {"msgid": 5}}, "params.msgid: expected a string"),
        ({"params": {"msgid": ""}}, "params.msgid: must not be empty"),
        ({"params": {}}, "params.msgid: is required"),
        ({"params": "m"}, "params: expected an object"),
        ({"data": "text"}, "data: expected an object or an array of objects"),
        ({"data": []}, "data: an empty batch"),
        ({"data": [{"a": 1}, 2]}, "data[1]: expected an object"),
        ({"data": None}, "data: expected an object"),
    ],
)
@pytest.mark.gen_test
async def test_request_rules_name_the_field(post, memory_sink, change, mentions):
    request = ingest_request(msgid="m-rule")
    request.update(change)
    echoed = "m-rule" if "params" not in change else None  # echoed only when the request has one
    assert_invalid(await post("/v2/data/in/events", request), mentions, msgid=echoed)
    assert not memory_sink.records


@pytest.mark.parametrize("field", ["id", "ver", "ts", "params", "data"])
@pytest.mark.gen_test
async def test_each_required_field(post, field):
    request = ingest_request(msgid="m-req")
    del request[field]
    echoed = None if field == "params" else "m-req"
    assert_invalid(await post("/v2/data/in/events", request), "%s: is required" % field, msgid=echoed)


@pytest.mark.gen_test
async def test_msgid_is_echoed_on_a_rule_failure(post):
    assert_invalid(await post("/v2/data/in/events", ingest_request(msgid="keep-me", ver=3)), "ver", msgid="keep-me")


@pytest.mark.parametrize(
    "body, mentions",
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"id": "api.data.in",}', "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested too deep"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
    ],
)
@pytest.mark.gen_test
async def test_bodies_that_are_not_a_json_object(post, body, mentions):
    assert_invalid(await post("/v2/data/in/events", body), mentions)


@pytest.mark.gen_test
async def test_nesting_past_max_json_depth_is_refused(post, memory_sink):
    deep = {}
    node = deep
    for _ in range(150):
        node["d"] = {}
        node = node["d"]
    assert_invalid(await post("/v2/data/in/events", ingest_request(deep)), "nested too deep")
    assert not memory_sink.records


@pytest.mark.gen_test
async def test_broken_gzip_is_a_bad_request(post):
    response = await post(
        "/v2/data/in/events",
        b"\x1f\x8bnot really",
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert_invalid(response, "not valid gzip")


@pytest.mark.gen_test
async def test_the_next_good_request_succeeds_after_a_bad_one(post):
    assert (await post("/v2/data/in/events", b"{oops")).code == 400
    assert (await post("/v2/data/in/events", ingest_request())).code == 200


# -- 404 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset, code, message",
    [
        ("nope", "DATASET_NOT_FOUND", "Dataset with id not found"),  # not in the config
        ("no-topic", "TOPIC_NOT_FOUND", "Entry topic is not defined"),  # in the config, without entry_topic
    ],
)
@pytest.mark.gen_test
async def test_unknown_dataset_and_dataset_without_entry_topic(post, memory_sink, dataset, code, message):
    response = await post("/v2/data/in/" + dataset, ingest_request(msgid="m-404"))
    envelope = assert_failure(response, 404, "BAD_REQUEST", code, msgid="m-404")
    assert envelope["error"]["message"] == message
    assert not memory_sink.records


@pytest.mark.parametrize(
    "path, method",
    [
        ("/", "GET"),
        ("/v2/data/in", "POST"),
        ("/v2/data/in/a/b", "POST"),
        ("/v1/data/in/example", "POST"),
        ("/nothing", "DELETE"),
    ],
)
@pytest.mark.gen_test
async def test_unknown_routes(http_client, base_url, path, method):
    body = b"{}" if method == "POST" else None
    response = await http_client.fetch(base_url + path, method=method, body=body, raise_error=False)
    assert_failure(response, 404, "NOT_FOUND", "ROUTE_NOT_FOUND")


# -- 405 ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.gen_test
async def test_other_methods_on_the_ingest_path(http_client, base_url, method):
    body = b"{}" if method in ("PUT", "PATCH") else None
    response = await http_client.fetch(base_url + "/v2/data/in/example", method=method, body=body, raise_error=False)
    assert_failure(response, 405, "METHOD_NOT_ALLOWED", "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "POST"


# -- 413 ----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_body_at_the_limit_is_fine_and_over_it_is_413(post, app, memory_sink):
    app.context.settings.max_body_bytes = 1000
    request = ingest_request({"pad": ""})
    base = len(body_of(request))
    request["data"]["pad"] = "x" * (1000 - base)
    assert len(body_of(request)) == 1000
    assert (await post("/v2/data/in/events", request)).code == 200
    request["data"]["pad"] += "x"
    response = await post("/v2/data/in/events", request)
    envelope = assert_failure(response, 413, "PAYLOAD_TOO_LARGE", "PAYLOAD_TOO_LARGE")
    assert "max_body_bytes" in envelope["error"]["message"]
    assert len(memory_sink.records) == 1


@pytest.mark.gen_test
async def test_chunked_body_over_the_limit(http_server, app, http_port, memory_sink):
    app.context.settings.max_body_bytes = 1000
    chunk = b"x" * 600
    request = (
        b"POST /v2/data/in/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    request += (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2 + b"0\r\n\r\n"
    status, envelope = await raw_http(http_port, request)
    assert status == 413 and envelope["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert not memory_sink.records


@pytest.mark.gen_test
async def test_gzip_body_is_capped_on_its_decompressed_size(post, app, memory_sink):
    app.context.settings.max_body_bytes = 10_000
    bomb = gzip.compress(b'{"id": "' + b"a" * 5_000_000 + b'"}')
    assert len(bomb) < 10_000
    response = await post(
        "/v2/data/in/events", bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    envelope = assert_failure(response, 413, "PAYLOAD_TOO_LARGE", "PAYLOAD_TOO_LARGE")
    assert "decompressed" in envelope["error"]["message"]


# -- 415 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/xml",
        "application/json; charset=latin-1",
        "multipart/form-data; boundary=x",
    ],
)
@pytest.mark.gen_test
async def test_non_json_content_type(post, content_type):
    response = await post("/v2/data/in/events", ingest_request(), headers={"Content-Type": content_type})
    envelope = assert_failure(response, 415, "UNSUPPORTED_MEDIA_TYPE", "UNSUPPORTED_MEDIA_TYPE")
    if "charset" not in content_type:
        assert "Content-Type: application/json" in envelope["error"]["message"]


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "gzip, br"])
@pytest.mark.gen_test
async def test_unsupported_content_encoding(post, encoding):
    response = await post(
        "/v2/data/in/events",
        ingest_request(),
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert_failure(response, 415, "UNSUPPORTED_MEDIA_TYPE", "UNSUPPORTED_MEDIA_TYPE")


# -- 503 and 500 --------------------------------------------------------------


@pytest.mark.gen_test
async def test_sink_unavailable_is_503_with_retry_after(post, memory_sink):
    memory_sink.failure = SinkUnavailable("broker gone")
    response = await post("/v2/data/in/events", ingest_request(msgid="m-503"))
    envelope = assert_failure(response, 503, "SERVICE_UNAVAILABLE", "SINK_UNAVAILABLE", msgid="m-503")
    assert response.headers["Retry-After"] == "7"
    assert "broker gone" in envelope["error"]["message"]
    memory_sink.failure = None
    assert (await post("/v2/data/in/events", ingest_request())).code == 200


@pytest.mark.gen_test
async def test_unexpected_error_is_500_without_a_traceback(post, memory_sink, caplog):
    memory_sink.failure = RuntimeError("secret internals")
    response = await post("/v2/data/in/events", ingest_request(msgid="m-500"))
    envelope = assert_failure(response, 500, "INTERNAL_SERVER_ERROR", "INTERNAL_SERVER_ERROR", msgid="m-500")
    assert b"secret internals" not in response.body and b"Traceback" not in response.body
    assert envelope["error"]["trace"] == ""
    assert "secret internals" in caplog.text  # logged for the operator


# -- the order of the checks ----------------------------------------------------


@pytest.mark.gen_test
async def test_check_order(post, app, memory_sink):
    """route -> method -> size -> content type -> JSON -> rules -> dataset -> topic -> sink."""
    bad_json_unknown_dataset = await post("/v2/data/in/nope", b"{oops")
    assert bad_json_unknown_dataset.code == 400
    bad_type_and_bad_json = await post("/v2/data/in/events", b"{oops", headers={"Content-Type": "text/plain"})
    assert bad_type_and_bad_json.code == 415
    app.context.settings.max_body_bytes = 10
    too_big_and_bad_type = await post("/v2/data/in/events", b"x" * 100, headers={"Content-Type": "text/plain"})
    assert too_big_and_bad_type.code == 413
    app.context.settings.max_body_bytes = 10_000
    memory_sink.failure = SinkUnavailable("down")
    no_topic_and_sink_down = await post("/v2/data/in/no-topic", ingest_request())
    assert no_topic_and_sink_down.code == 404


# -- health ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_health_reports_each_sink(http_client, base_url, memory_sink):
    response = await http_client.fetch(base_url + "/health")
    envelope = assert_envelope(json.loads(response.body), status="SUCCESS", response_code="OK", api_id="api.health")
    assert envelope["result"]["status"] == "ok"
    assert envelope["result"]["version"] and envelope["result"]["uptime_seconds"] >= 0
    assert envelope["result"]["sinks"]["mem"]["state"] == "up"
    assert envelope["result"]["sinks"]["local"]["type"] == "file"
    memory_sink.failure = SinkUnavailable("down")
    degraded = json.loads((await http_client.fetch(base_url + "/health")).body)
    assert degraded["result"]["status"] == "degraded"
    assert degraded["result"]["sinks"]["mem"]["state"] == "down"


@pytest.mark.gen_test(timeout=15)
async def test_health_says_since_when_a_sink_is_down_and_ready_returns_without_traffic(
    post, http_client, base_url, tmp_path, health
):
    directory = tmp_path / "data"
    shutil.rmtree(directory)
    directory.write_text("a file where the directory was")  # the file sink's directory takes no write
    assert (await post("/v2/data/in/example", ingest_request())).code == 503
    report = (await health())["sinks"]["local"]
    assert report["state"] == "down" and report["error"]
    assert TS_WITH_OFFSET.match(report["down_since"]), report
    assert (await http_client.fetch(base_url + "/ready", raise_error=False)).code == 503
    directory.unlink()  # the operator mends it; no client sends anything meanwhile
    for _ in range(50):
        if (await http_client.fetch(base_url + "/ready", raise_error=False)).code == 200:
            break
        await asyncio.sleep(0.1)
    assert (await http_client.fetch(base_url + "/ready", raise_error=False)).code == 200


@pytest.mark.gen_test
async def test_ready_answers_head_and_its_503_says_when_to_retry(http_client, base_url, memory_sink):
    head = await http_client.fetch(base_url + "/ready", method="HEAD")
    assert head.code == 200 and head.body == b""
    assert (await http_client.fetch(base_url + "/health", method="HEAD")).code == 200
    memory_sink.failure = SinkUnavailable("down")
    for method in ("GET", "HEAD"):
        response = await http_client.fetch(base_url + "/ready", method=method, raise_error=False)
        assert response.code == 503 and response.headers["Retry-After"] == "7"
        assert response.body == b"" if method == "HEAD" else envelope_of(response)["error"]["code"] == "NOT_READY"


@pytest.mark.gen_test
async def test_a_msgid_that_cannot_be_written_is_not_echoed_and_the_answer_has_a_body(post, memory_sink, caplog):
    body = body_of(ingest_request(msgid="placeholder")).replace(b'"placeholder"', b'"\\udc00"')
    response = await post("/v2/data/in/events", body)
    envelope = assert_failure(response, 400, "BAD_REQUEST", "DATA_INGESTION_INVALID_INPUT")
    assert "msgid" not in envelope["params"]
    assert "Uncaught exception" not in caplog.text
    assert not memory_sink.records


@pytest.mark.gen_test
async def test_unknown_keys_in_params_are_accepted(post, memory_sink):
    request = ingest_request(msgid="p-1")
    request["params"]["did"] = "device-1"  # the upstream refuses these; this service accepts and ignores them
    response = await post("/v2/data/in/events", request)
    assert response.code == 200, response.body
    assert memory_sink.documents()[0]["msgid"] == "p-1"


@pytest.mark.gen_test
async def test_the_sinks_details_are_for_operators_only(http_client, base_url, health, tmp_path):
    public = json.loads((await http_client.fetch(base_url + "/health")).body)["result"]["sinks"]["local"]
    assert public == {"type": "file", "state": "up"}  # no directory where ingest is served
    assert (await health())["sinks"]["local"]["directory"] == str(tmp_path / "data")  # the management listener
