"""What Tornado would refuse is answered in the envelope first; a refusal before the body says Connection: close.

Items 1, 3, 12 and 19 of the hardening issue: malformed Content-Length and
Transfer-Encoding, a path that is not UTF-8, a method Tornado does not know,
keep-alive clients after a refusal, a trailing slash.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging

import pytest

from tests.support.data_in import body_of, ingest_request
from tests.support.raw_http import exchange, post_bytes, read_response

GOOD = body_of(ingest_request(msgid="m-frame"))


@pytest.mark.parametrize(
    "framing",
    [
        ["Content-Length: abc"],
        ["Content-Length: 0x10"],
        ["Content-Length: -1"],
        ["Content-Length: 5, 6"],
        ["Content-Length: 5", "Content-Length: 6"],
        ["Content-Length: \uff11\uff12"],  # full-width digits
        ["Content-Length: 10", "Transfer-Encoding: chunked"],
        ["Transfer-Encoding: gzip"],
    ],
)
@pytest.mark.gen_test
async def test_bad_framing_is_a_400_envelope_and_the_connection_closes(http_server, http_port, memory_sink, framing):
    response = await exchange(http_port, post_bytes("/v2/data/in/events", b"", *framing))
    assert response.status == 400, response.body
    envelope = response.envelope
    assert envelope["responseCode"] == "BAD_REQUEST"
    assert envelope["error"]["code"] == "DATA_INGESTION_INVALID_INPUT"
    assert "Content-Length" in envelope["error"]["message"] or "Transfer-Encoding" in envelope["error"]["message"]
    assert response.headers.get("connection") == "close"
    assert not memory_sink.records


@pytest.mark.parametrize(
    "framing", [["Content-Length: %d" % len(GOOD)], ["Content-Length: %d, %d" % (len(GOOD), len(GOOD))]]
)
@pytest.mark.gen_test
async def test_good_framing_still_works(http_server, http_port, framing):
    response = await exchange(http_port, post_bytes("/v2/data/in/events", GOOD, *framing))
    assert response.status == 200, response.body


@pytest.mark.gen_test
async def test_a_path_that_is_not_utf8_is_a_contract_400(http_server, http_port):
    response = await exchange(http_port, post_bytes("/v2/data/in/%ff", GOOD))
    assert response.status == 400
    assert response.envelope["error"]["code"] == "DATA_INGESTION_INVALID_INPUT"
    assert response.headers.get("connection") == "close"


@pytest.mark.parametrize(
    "path, status, code, allow",
    [
        ("/v2/data/in/events", 405, "METHOD_NOT_ALLOWED", "POST"),
        ("/health", 405, "METHOD_NOT_ALLOWED", "GET, HEAD"),
        ("/nowhere", 404, "ROUTE_NOT_FOUND", None),
    ],
)
@pytest.mark.gen_test
async def test_a_method_tornado_does_not_know_gets_the_contract_answer(
    http_server, http_port, path, status, code, allow
):
    response = await exchange(http_port, b"PROPFIND %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    assert response.status == status
    assert response.envelope["error"]["code"] == code
    assert response.headers.get("allow") == allow


@pytest.mark.parametrize("path", ["/v2/data/in/events/", "/health/", "/ready/"])
@pytest.mark.gen_test
async def test_a_trailing_slash_is_the_same_route(post, http_client, base_url, path):
    if path.startswith("/v2"):
        response = await post(path, ingest_request(msgid="slash"))
    else:
        response = await http_client.fetch(base_url + path, raise_error=False)
    assert response.code == 200, response.body


KEY = "the-key"


class TestKeepAliveAfterRefusals:
    @pytest.fixture
    def config_document(self, config_document):
        config_document["auth"] = {"keys": [{"name": "k", "env": "FRAMING_TEST_KEY"}]}
        return config_document

    @pytest.fixture(autouse=True)
    def key_in_environment(self, monkeypatch):
        monkeypatch.setenv("FRAMING_TEST_KEY", KEY)

    REFUSED = {
        "401": ("/v2/data/in/events", ["X-API-Key: wrong"]),
        "405": ("/health", []),
        "413 by Content-Length": ("/v2/data/in/events", ["X-API-Key: " + KEY, "Content-Length: 999999999"]),
        "404": ("/nowhere", []),
    }

    @pytest.mark.parametrize("refusal", sorted(REFUSED))
    @pytest.mark.gen_test
    async def test_a_refusal_before_the_body_says_connection_close(self, http_server, http_port, refusal):
        path, headers = self.REFUSED[refusal]
        reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
        # the refused request with its body, and a second request pipelined behind it
        writer.write(post_bytes(path, GOOD, *headers) + post_bytes("/health", b""))
        await writer.drain()
        first = await asyncio.wait_for(read_response(reader), 5)
        assert first is not None and first.status == int(refusal[:3])
        assert first.headers.get("connection") == "close", first.headers
        # the server said it closes: the pipelined request is not answered, and the client knows to send it again
        rest = await asyncio.wait_for(reader.read(), 5)
        assert b"200 OK" not in rest
        writer.close()

    @pytest.mark.gen_test(timeout=60)
    async def test_a_keep_alive_client_never_sees_a_reset_after_refusals(self, http_server, http_port):
        """http.client on one connection object, as a requests.Session would: refused and good requests alternate."""

        def client():
            connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
            statuses = []
            for i in range(30):
                key, path = [("wrong", "/v2/data/in/events"), (KEY, "/health"), (KEY, "/v2/data/in/events")][i % 3]
                connection.request("POST", path, GOOD, {"Content-Type": "application/json", "X-API-Key": key})
                response = connection.getresponse()
                json.loads(response.read())  # every answer is an envelope
                statuses.append(response.status)
            connection.close()
            return statuses

        statuses = await asyncio.get_running_loop().run_in_executor(None, client)
        assert statuses == [401, 405, 200] * 10


@pytest.mark.gen_test
async def test_no_log_line_quotes_a_query_value(http_server, http_port, post, memory_sink, caplog):
    caplog.set_level(logging.DEBUG)
    await exchange(http_port, post_bytes("/v2/data/in/%ff?api_key=s3cret-1", GOOD))  # Tornado's own 400
    memory_sink.failure = RuntimeError("boom")  # an unexpected error: a 500 with its traceback logged
    assert (await post("/v2/data/in/events?api_key=s3cret-2", ingest_request())).code == 500
    assert "boom" in caplog.text and "api_key=***" in caplog.text
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize(
    "request_bytes",
    [
        post_bytes("/v2/data/in/events", GOOD, "X-Request-ID: mine-1"),  # 200
        post_bytes("/nowhere", GOOD, "X-Request-ID: mine-1"),  # 404
        post_bytes("/v2/data/in/events", b"{", "X-Request-ID: mine-1"),  # 400
        post_bytes("/v2/data/in/events", b"", "X-Request-ID: mine-1", "Content-Length: abc"),  # 400, framing
        b"PROPFIND /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: mine-1\r\n\r\n",  # Tornado's own 405
    ],
)
@pytest.mark.gen_test
async def test_every_answer_echoes_the_request_id(http_server, http_port, request_bytes):
    response = await exchange(http_port, request_bytes)
    assert response.headers.get("x-request-id") == "mine-1", (response.status, response.headers)


@pytest.mark.gen_test
async def test_a_request_id_is_made_when_none_is_sent(post):
    first, second = [await post("/v2/data/in/events", ingest_request()) for _ in range(2)]
    assert len(first.headers["X-Request-ID"]) == 32 and first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
