"""SIGTERM under load: stop accepting, /ready 503, finish what is in flight, flush, exit 0."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time

import pytest

from tests.support.data_in import REFERENCE_REQUEST, ingest_request


@pytest.mark.parametrize("processes", ["1", "2"])
def test_sigterm_under_load_loses_no_acknowledged_record(service_factory, tmp_path, processes):
    config = (
        "server: {drain_timeout: 10}\n"
        "sinks: {local: {type: file, directory: %s}}\n"
        "datasets: {example: {sink: local, entry_topic: example}}\n" % (tmp_path / "data")
    )
    service = service_factory("--port", "0", "--address", "127.0.0.1", "--processes", processes, config=config)
    acknowledged, failures = [], []
    stop_sending = threading.Event()

    def client(number):
        sent = 0
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        while not stop_sending.is_set():
            msgid = "c%d-%d" % (number, sent)
            sent += 1
            try:
                connection.request(
                    "POST",
                    "/v2/data/in/example",
                    json.dumps(ingest_request(msgid=msgid)),
                    {"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                failures.append(msgid)  # refused or cut while stopping: never acknowledged
                connection.close()
                time.sleep(0.01)
                connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
                continue
            if response.status == 200:
                acknowledged.append(msgid)
        connection.close()

    clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in clients:
        thread.start()
    time.sleep(1.5)
    before = len(acknowledged)
    started = time.monotonic()
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(15) == 0
    drain_seconds = time.monotonic() - started
    stop_sending.set()
    for thread in clients:
        thread.join(15)

    written = [json.loads(line)["msgid"] for line in (tmp_path / "data" / "example.jsonl").read_text().splitlines()]
    print(
        "acknowledged %d (%d before SIGTERM), refused or cut %d, drained and exited in %.3f s"
        % (len(acknowledged), before, len(failures), drain_seconds)
    )
    assert before > 50, "the load must be running when SIGTERM arrives"
    assert set(acknowledged) <= set(written), "a 200 was given for a record that is not in the file"
    assert len(written) == len(set(written))
    assert drain_seconds < 10


def test_ready_goes_503_while_draining_and_in_flight_requests_finish(service_factory, tmp_path):
    config = (
        "server: {drain_timeout: 10}\n"
        "sinks: {slow: {type: memory, delay: 2}}\n"
        "datasets: {example: {sink: slow, entry_topic: example}}\n"
    )
    service = service_factory("--port", "0", "--address", "127.0.0.1", config=config)
    probe = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    probe.request("GET", "/ready")
    first = probe.getresponse()
    first.read()
    assert first.status == 200

    outcome = {}

    def slow_request():
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        connection.request(
            "POST", "/v2/data/in/example", json.dumps(REFERENCE_REQUEST), {"Content-Type": "application/json"}
        )
        outcome["status"] = connection.getresponse().status

    sender = threading.Thread(target=slow_request)
    sender.start()
    time.sleep(0.5)
    service.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    probe.request("GET", "/ready")  # the probe's kept-alive connection is still served while draining
    draining = probe.getresponse()
    body = json.loads(draining.read())
    assert draining.status == 503 and body["error"]["code"] == "NOT_READY" and "draining" in body["error"]["message"]
    assert draining.getheader("Connection") == "close"  # kept-alive clients are sent elsewhere
    sender.join(10)
    assert outcome["status"] == 200
    assert service.process.wait(15) == 0
    service.wait_for("stopped: 1 requests in flight finished")


def test_a_dead_worker_is_replaced(service_factory, tmp_path):
    service = service_factory("--port", "0", "--address", "127.0.0.1", "--processes", "2")
    workers = {
        int(service.wait_for(r"^\S+ \S+ (\d+) INFO tornado_ingest.service: sink 'local' started").group(1))
        for _ in range(2)
    }
    assert len(workers) == 2 and service.process.pid not in workers
    os.kill(workers.pop(), signal.SIGKILL)
    service.wait_for(r"worker \d+ died with status -9: starting another")
    replacement = int(service.wait_for(r"^\S+ \S+ (\d+) INFO tornado_ingest.service: sink 'local' started").group(1))
    assert replacement not in workers
    for _ in range(10):
        assert service.post("/v2/data/in/example", REFERENCE_REQUEST)[0] == 200
    assert service.stop() == 0
    service.wait_for("SIGTERM received: stopping 2 workers")


def test_shutdown_delay_keeps_accepting_with_ready_503_then_closes_the_listener(service_factory, tmp_path):
    config = (
        "server: {shutdown_delay: 1.5}\n"
        "sinks: {local: {type: file, directory: %s}}\n"
        "datasets: {example: {sink: local, entry_topic: example}}\n" % (tmp_path / "data")
    )
    service = service_factory("--port", "0", "--address", "127.0.0.1", config=config)

    def fresh_request(method, path, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        try:
            connection.request(method, path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.getheader("Connection"), response.read()
        finally:
            connection.close()

    assert fresh_request("GET", "/ready")[0] == 200
    service.process.send_signal(signal.SIGTERM)
    service.wait_for(r"/ready answers 503; the listener closes in 1.5s")
    started = time.monotonic()

    # during the delay: new connections are still taken and served, /ready says to go elsewhere
    assert fresh_request("GET", "/ready")[0] == 503
    status, connection_header, _ = fresh_request("POST", "/v2/data/in/example", json.dumps(REFERENCE_REQUEST))
    assert (status, connection_header) == (200, "close")
    assert time.monotonic() - started < 1.0
    # then the listener closes and the service drains and exits
    assert service.process.wait(15) == 0
    with pytest.raises(OSError):
        fresh_request("GET", "/ready")
    assert time.monotonic() - started >= 1.0
    service.wait_for("stopped: ")
