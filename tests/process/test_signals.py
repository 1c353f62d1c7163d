"""Signals and lifecycle: SIGHUP reloads and never kills or orphans, a stop during start-up is prompt, a cut drain
says so once."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request

from tests.support.data_in import REFERENCE_REQUEST, ingest_request

MEMORY = "sinks: {m: {type: memory}}\ndatasets: {example: {sink: m, entry_topic: e}}\n"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as stat:  # a zombie is not alive
        return stat.read().split(") ")[1][0] != "Z"


def children_of(pid: int):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as children:
        return [int(child) for child in children.read().split()]


def test_sighup_reloads_and_kills_nothing(service_factory):
    service = service_factory("--port", "0", "--address", "127.0.0.1", config=MEMORY)
    service.wait_for("sink 'm' started")
    service.process.send_signal(signal.SIGHUP)
    service.wait_for("config reloaded from")
    assert service.process.poll() is None
    assert service.post("/v2/data/in/example", REFERENCE_REQUEST)[0] == 200
    assert service.stop() == 0


def test_with_workers_sighup_kills_nothing_and_workers_never_outlive_their_supervisor(service_factory):
    service = service_factory("--port", "0", "--address", "127.0.0.1", "--processes", "2", config=MEMORY)
    for _ in range(2):
        service.wait_for("sink 'm' started")
    supervisor = service.process.pid
    workers = children_of(supervisor)
    assert len(workers) == 2
    service.process.send_signal(signal.SIGHUP)
    for _ in range(2):  # every worker reloads
        service.wait_for("config reloaded from")
    time.sleep(0.3)
    assert service.process.poll() is None and all(alive(pid) for pid in workers)
    assert service.post("/v2/data/in/example", REFERENCE_REQUEST)[0] == 200

    service.process.send_signal(signal.SIGKILL)  # whatever takes the supervisor, its workers go too
    service.process.wait(5)
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "workers outlived their supervisor"
    service.wait_for("the supervisor \\(pid %d\\) is gone: this worker stops" % supervisor)


def test_a_stop_signal_while_the_sinks_start_stops_the_start_up(service_factory):
    silent = socket.socket()  # takes the TCP connection, never speaks AMQP: the sink's start waits
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        config = (
            "sinks: {r: {type: rabbitmq, url: 'amqp://guest:guest@127.0.0.1:%d/%%2F', connect_timeout: 20}}\n"
            "datasets: {example: {sink: r, entry_topic: q}}\n" % silent.getsockname()[1]
        )
        service = service_factory("--port", "0", "--address", "127.0.0.1", config=config)
        time.sleep(0.5)
        started = time.monotonic()
        service.process.send_signal(signal.SIGINT)
        assert service.process.wait(10) == 0
        assert time.monotonic() - started < 3, "the start-up did not stop promptly"
        service.wait_for("SIGINT received: stopping")
        service.wait_for("stopped while the sinks were starting")
    finally:
        silent.close()


def test_a_drain_cut_by_its_timeout_ends_with_one_line(service_factory):
    config = "server: {drain_timeout: 1}\nsinks: {m: {type: memory, delay: 5}}\n" + MEMORY.split("\n", 1)[1]
    service = service_factory("--port", "0", "--address", "127.0.0.1", config=config)

    def slow_request():
        request = urllib.request.Request(
            "http://127.0.0.1:%d/v2/data/in/example" % service.port,
            data=json.dumps(ingest_request()).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except Exception:
            pass  # cut off: no answer

    sender = threading.Thread(target=slow_request)
    sender.start()
    time.sleep(0.5)
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(10) == 0
    sender.join(10)
    service.wait_for("stopped: 1 of 1 requests in flight cut off by drain_timeout \\(1s\\); sinks closed; bye")
    rest = service.remaining_log()
    assert "500" not in rest and "ERROR" not in rest, rest
