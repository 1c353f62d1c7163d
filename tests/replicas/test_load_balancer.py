"""Three replicas behind a real HAProxy (``conf/deploy/haproxy/haproxy.cfg``), under load.

The replicas are the service as child processes on their own ports, sharing
one file sink directory and one Redis. HAProxy health-checks ``/ready``. Load
runs through HAProxy while (a) each replica in turn is stopped with SIGTERM
and started again (a rolling restart: no client may see a failed request),
and (b) one replica is killed with SIGKILL (failed requests are counted; no
2xx may be missing from the sink). Last, a client retrying through HAProxy on
another replica, with idempotency on Redis, writes nothing twice. The figures
are printed at the end of the run.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import skip_or_fail
from tests.support.data_in import ingest_request
from tests.support.haproxy import HAProxy, haproxy_binary
from tests.support.load import ThreadedLoad
from tests.support.redis_server import REDIS_URL, redis_unreachable_reason
from tests.support.replicas import Replicas, lines_of

REPLICAS = 3
CLIENTS = 8
#: longer than HAProxy needs to see /ready turn 503 (fall 2 x inter 500 ms, see haproxy.cfg)
SHUTDOWN_DELAY = 2.0

CONFIG = """\
server: {shutdown_delay: %(delay)s, drain_timeout: 10}
sinks:
  shared: {type: file, directory: %(data)s}
datasets:
  example: {sink: shared, entry_topic: example}
  retried:
    sink: shared
    entry_topic: retried
    idempotency: {store: redis, url: "%(redis)s", window: 10m}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    binary = haproxy_binary()
    if binary is None:
        skip_or_fail("haproxy is not installed (apt-get install haproxy)")
    reason = redis_unreachable_reason()
    if reason is not None:
        skip_or_fail(reason)
    folder = tmp_path_factory.mktemp("replicas")
    config = folder / "config.yaml"
    config.write_text(CONFIG % {"delay": SHUTDOWN_DELAY, "data": folder / "data", "redis": REDIS_URL})
    replicas = Replicas(REPLICAS, str(config), str(folder))
    haproxy = HAProxy(binary, replicas.ports, str(folder / "haproxy.log"))
    try:
        for number in range(1, REPLICAS + 1):
            haproxy.wait_until("replica-%d" % number, "UP")
        yield replicas, haproxy, folder / "data"
    finally:
        haproxy.stop()
        replicas.close()


def all_up(haproxy):
    for number in range(1, REPLICAS + 1):
        haproxy.wait_until("replica-%d" % number, "UP")


def wait_for_load(load, requests):
    deadline = time.monotonic() + 10
    target = load.count() + requests
    while load.count() < target:
        assert time.monotonic() < deadline, "the load is not flowing"
        time.sleep(0.05)


def check_in_the_sink(figures, data, phase, record_property):
    stored = [record["msgid"] for record in lines_of(str(data / "example.jsonl"))]
    summary = "%s through HAProxy: %s" % (phase, figures.summary(stored))
    print("\n" + summary)
    record_property("figures", summary)
    missing = set(figures.acknowledged) - set(stored)
    assert not missing, "2xx not in the sink: %s" % sorted(missing)[:10]
    assert len(figures.acknowledged) > 500, "too little load to prove anything"
    return stored


def test_a_rolling_restart_under_load_fails_no_request(cluster, record_property):
    replicas, haproxy, data = cluster
    all_up(haproxy)
    load = ThreadedLoad(haproxy.port, "example", CLIENTS, "rolling-").start()
    timings = []
    try:
        wait_for_load(load, 200)
        for number in range(1, REPLICAS + 1):
            started = time.monotonic()
            assert replicas.stop(number) == 0
            replicas.start(number)
            haproxy.wait_until("replica-%d" % number, "UP")
            timings.append(time.monotonic() - started)
            wait_for_load(load, 200)  # served by all three again before the next goes
    finally:
        figures = load.stop()
    check_in_the_sink(figures, data, "rolling restart", record_property)
    summary = "rolling restart: each replica stopped, started and back in HAProxy in %s s" % ", ".join(
        "%.1f" % seconds for seconds in timings
    )
    print(summary)
    record_property("figures", summary)
    assert not figures.failed, "failed during the rolling restart: %s" % figures.failed[:10]


def test_a_replica_killed_under_load_loses_no_acknowledged_record(cluster, record_property):
    replicas, haproxy, data = cluster
    all_up(haproxy)
    load = ThreadedLoad(haproxy.port, "example", CLIENTS, "killed-").start()
    try:
        wait_for_load(load, 300)
        replicas.kill(2)
        noticed = haproxy.wait_until("replica-2", "DOWN")
        wait_for_load(load, 300)
        replicas.start(2)
        haproxy.wait_until("replica-2", "UP")
        wait_for_load(load, 300)
    finally:
        figures = load.stop()
    stored = check_in_the_sink(figures, data, "SIGKILL of one replica", record_property)
    written_anyway = [outcome.msgid for outcome in figures.failed if outcome.msgid in stored]
    summary = (
        "SIGKILL: HAProxy marked the replica DOWN after %.1f s; of the %d failed, %d were written all the same"
        % (
            noticed,
            len(figures.failed),
            len(written_anyway),
        )
    )
    print(summary, figures.failed[:CLIENTS])
    record_property("figures", summary)
    # only the requests the killed replica had in flight can fail: at most one per client
    assert len(figures.failed) <= CLIENTS
    assert all(outcome.status in (0, 502, 503) for outcome in figures.failed)


def post_through(haproxy, msgid, data):
    request = urllib.request.Request(
        "http://127.0.0.1:%d/v2/data/in/retried" % haproxy.port,
        data=json.dumps(ingest_request(data=data, msgid=msgid)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_a_retry_through_another_replica_writes_nothing_twice(cluster, record_property):
    replicas, haproxy, data = cluster
    all_up(haproxy)
    msgid = "lb-retry-" + uuid.uuid4().hex
    answers = [post_through(haproxy, msgid, {"n": 1}) for _ in range(REPLICAS)]
    assert [status for status, _, _ in answers] == [200] * REPLICAS
    assert len({headers.get("X-Served-By") for _, headers, _ in answers}) == REPLICAS, "round robin: every replica"
    assert len({envelope["params"]["resmsgid"] for _, _, envelope in answers}) == 1
    assert [headers.get("Idempotent-Replayed") for _, headers, _ in answers] == [None, "true", "true"]
    conflict = post_through(haproxy, msgid, {"n": 2})
    assert conflict[0] == 409 and conflict[2]["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"

    together = "lb-together-" + uuid.uuid4().hex  # sent at once, to every replica
    with ThreadPoolExecutor(max_workers=9) as pool:
        answers = list(pool.map(lambda _: post_through(haproxy, together, {"n": 3}), range(9)))
    assert [status for status, _, _ in answers] == [200] * 9
    assert len({envelope["params"]["resmsgid"] for _, _, envelope in answers}) == 1

    written = [record["msgid"] for record in lines_of(str(data / "retried.jsonl"))]
    assert written.count(msgid) == 1 and written.count(together) == 1
    summary = "retries through HAProxy, idempotency on Redis: 3 + 9 requests, 2 msgids, 2 records written"
    print("\n" + summary)
    record_property("figures", summary)
