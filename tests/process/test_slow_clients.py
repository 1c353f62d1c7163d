"""Slow clients against the service as a process: a request head that never completes is cut off."""

from __future__ import annotations

from tests.support.data_in import ingest_request


def test_a_request_head_that_never_completes_is_cut_off(service_factory, tmp_path):
    import socket
    import time

    config = "server: {idle_timeout: 0.5}\nsinks: {m: {type: memory}}\ndatasets: {example: {sink: m, entry_topic: e}}\n"
    service = service_factory("--port", "0", "--address", "127.0.0.1", config=config)
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as slow:
        slow.sendall(b"POST /v2/data/in/example HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert slow.recv(100) == b""
        assert 0.4 < time.monotonic() - started < 3
    assert service.post("/v2/data/in/example", ingest_request())[0] == 200


def test_a_half_closed_request_is_a_client_gone_not_a_200(service_factory, tmp_path):
    """The client shuts its side down right after sending (socat does): to the service the connection is
    closed, so no answer can reach it. The log says 499, never 200; at most one record is written."""
    import json
    import socket

    service = service_factory("--port", "0", "--address", "127.0.0.1")
    body = json.dumps(ingest_request(msgid="half")).encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as half:
        half.sendall(
            b"POST /v2/data/in/example HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)
            + body
        )
        half.shutdown(socket.SHUT_WR)
        answer = half.recv(1000)
    line = service.wait_for(r"tornado.access: (\d+) POST /v2/data/in/example")
    if answer:  # the answer was out before the close was noticed: a plain 200, and the log says so
        assert answer.startswith(b"HTTP/1.0 200") and line.group(1) == "200"
    else:
        assert line.group(1) == "499"
    written = (tmp_path / "data" / "example.jsonl").read_text().splitlines() if (tmp_path / "data").exists() else []
    assert len(written) <= 1
