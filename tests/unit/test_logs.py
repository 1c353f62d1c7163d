"""Log lines: the text and the JSON format carry the same fields; the client's address only through trusted proxies."""

from __future__ import annotations

import json
import logging

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from tornado_ingest.access_log import level_for
from tornado_ingest.logs import JsonFormatter, TextFormatter, client_address, trusted_networks

FIELDS = {
    "method": "POST",
    "path": "/v2/data/in/orders?api_key=***",
    "status": 200,
    "dataset": "orders",
    "msgid": "m 1",  # a space: quoted in text
    "request_id": "r-1",
    "key": None,  # absent: not written
    "bytes": 120,
    "events": 2,
    "duration_ms": 1.5,
    "remote": "10.1.2.3",
}


def access_record():
    record = logging.LogRecord("tornado.access", logging.INFO, __file__, 1, "%d %s", (200, "POST"), None)
    record.access = dict(FIELDS)
    return record


def test_text_appends_the_fields():
    line = TextFormatter().format(access_record())
    assert line.endswith(
        # a value holding "=" or a space is quoted
        'tornado.access: 200 POST method=POST path="/v2/data/in/orders?api_key=***" status=200 dataset=orders '
        'msgid="m 1" request_id=r-1 bytes=120 events=2 duration_ms=1.5 remote=10.1.2.3'
    )


def test_json_is_one_object_with_the_same_fields():
    entry = json.loads(JsonFormatter().format(access_record()))
    assert entry["level"] == "INFO" and entry["logger"] == "tornado.access" and entry["message"] == "200 POST"
    assert {name: value for name, value in FIELDS.items() if value is not None} == {
        name: entry[name] for name in FIELDS if name in entry
    }
    assert "T" in entry["time"] and "key" not in entry


def test_json_keeps_an_exception_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


def request_from(peer, forwarded=None):
    headers = HTTPHeaders(dict({"Host": "gateway"}, **({"X-Forwarded-For": forwarded} if forwarded else {})))
    request = HTTPServerRequest(headers=headers, start_line=RequestStartLine("GET", "/", "HTTP/1.1"))
    request.remote_ip = peer
    return request


@pytest.mark.parametrize(
    "peer, forwarded, trusted, expected",
    [
        ("203.0.113.9", "1.2.3.4", [], "203.0.113.9"),  # no trusted proxies: the header is ignored
        ("203.0.113.9", "1.2.3.4", ["10.0.0.0/8"], "203.0.113.9"),  # the peer is no trusted proxy
        ("10.0.0.5", "1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
        (
            "10.0.0.5",
            "6.6.6.6, 1.2.3.4, 10.0.0.7",
            ["10.0.0.0/8"],
            "1.2.3.4",
        ),  # a client's forged left part is not read
        ("10.0.0.5", "", ["10.0.0.0/8"], "10.0.0.5"),
    ],
)
def test_client_address(peer, forwarded, trusted, expected):
    assert client_address(request_from(peer, forwarded), trusted_networks(trusted)) == expected


@pytest.mark.parametrize(
    "status, level",
    [(200, logging.INFO), (404, logging.WARNING), (499, logging.INFO), (503, logging.INFO), (500, logging.ERROR)],
)
def test_levels(status, level):
    assert level_for(status) == level
