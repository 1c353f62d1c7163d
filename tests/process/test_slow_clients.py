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
