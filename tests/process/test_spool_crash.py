"""kill -9 and the spool: the service killed while it spools, and while it replays, then started again on the
same directory, has lost nothing it answered 200 or 202 (a record may reach the broker twice: at least once).

The service runs as a child process; the broker (librdkafka's mock Kafka, or the local RabbitMQ) is reached
through a proxy in this process, which the tests cut and restore.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
import uuid

import pytest

from tests.support import rabbitmq
from tests.support.data_in import ingest_request
from tests.support.kafka_cluster import cuttable_or_skip, unique_topic
from tests.support.load import ThreadedLoad
from tests.support.spool import duplicates
from tests.support.tcp_proxy import TcpProxy

SEND_TIMEOUT = 2


class KafkaBroker:
    name = "kafka"

    def __init__(self) -> None:
        self.site = cuttable_or_skip()
        self.destination = self.site.create_topic(unique_topic("crash"))

    def sink(self) -> str:
        return "{type: kafka, bootstrap_servers: '%s', producer: {api_version: '2.3'}, send_timeout: %d" % (
            self.site.bootstrap,
            SEND_TIMEOUT,
        )

    def cut(self) -> None:
        self.site.cut()

    def restore(self) -> None:
        self.site.restore()

    def msgids(self, at_least: int) -> list:
        messages = self.site.consume(self.destination, at_least, 30)
        messages = self.site.consume(self.destination, len(messages) + 2000, 3) or messages
        return [dict(message.headers)["msgid"].decode() for message in messages]

    def close(self) -> None:
        self.site.close()


class ConfluentKafkaBroker(KafkaBroker):
    """The same Kafka, through the sink's ``driver: confluent``."""

    name = "kafka-confluent"

    def sink(self) -> str:
        return super().sink() + ", driver: confluent"


class RabbitBroker:
    name = "rabbitmq"

    def __init__(self) -> None:
        self.admin = rabbitmq.reachable_admin()
        self.proxy = TcpProxy(rabbitmq.broker_address()).start()
        self.url = rabbitmq.with_address(rabbitmq.RABBITMQ_URL, self.proxy.host, self.proxy.port)
        self.destination = "ti-crash-" + uuid.uuid4().hex[:10]

    def sink(self) -> str:
        return (
            "{type: rabbitmq, url: '%s', declare: {queues: [{name: %s}]}, confirm_timeout: %d, connect_timeout: 1,"
            " reconnect_delay: 0.05, reconnect_max_delay: 0.5" % (self.url, self.destination, SEND_TIMEOUT)
        )

    def cut(self) -> None:
        self.proxy.cut()

    def restore(self) -> None:
        self.proxy.restore()

    def msgids(self, at_least: int) -> list:
        return [rabbitmq.headers_of(properties)["msgid"] for _, properties, _ in self.admin.drain(self.destination)]

    def close(self) -> None:
        self.proxy.close()
        self.admin.delete(queues=[self.destination])


@pytest.fixture(params=[KafkaBroker, ConfluentKafkaBroker, RabbitBroker], ids=["kafka", "kafka-confluent", "rabbitmq"])
def broker(request):
    made = request.param()
    yield made
    made.close()


def config(broker, spool_directory, replay_rate=10000) -> str:
    return (
        "server: {drain_timeout: 5, management_port: 0}\n"
        "sinks:\n  bus: %s, spool: {directory: '%s', replay_rate: %d}}\n"
        "datasets: {orders: {sink: bus, entry_topic: '%s'}}\n"
        % (broker.sink(), spool_directory, replay_rate, broker.destination)
    )


def spool_of(service) -> dict:
    # the management listener: /health in detail
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % service.management_port, timeout=10) as response:
        return json.loads(response.read())["result"]["sinks"]["bus"]["spool"]


def wait_for_spool(service, check, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        report = spool_of(service)
        if check(report):
            return report
        assert time.monotonic() < deadline, "%s\n%s" % (report, "".join(service.log) + service.remaining_log(0.5))
        time.sleep(0.2)


def start(service_factory, broker, tmp_path, **kwargs):
    service = service_factory(
        "--port", "0", "--address", "127.0.0.1", config=config(broker, tmp_path / "spool", **kwargs)
    )
    service.management_port = int(service.wait_for(r"management listener on \S+ port (\d+)").group(1))
    service.wait_for("sink 'bus' started")
    return service


def killed(service) -> None:
    service.process.send_signal(signal.SIGKILL)
    assert service.process.wait(10) == -signal.SIGKILL


def check_nothing_answered_2xx_was_lost(broker, answers, sent_before=()):
    answered = set(answers.with_status(200, 202))
    msgids = broker.msgids(len(answered))
    missing = answered - set(msgids)
    assert not missing, "%d answered 2xx and not in %s, e.g. %s" % (len(missing), broker.name, sorted(missing)[:5])
    assert set(msgids) <= set(answers.status), "the broker has records nobody sent"
    return msgids


def test_killed_while_spooling_loses_nothing_answered(service_factory, broker, tmp_path):
    first = start(service_factory, broker, tmp_path)
    load = ThreadedLoad(first.port, "orders").start()
    time.sleep(1.5)
    broker.cut()
    wait_for_spool(first, lambda report: report["records"] > 300)
    killed(first)  # mid-load: some requests are cut off unanswered (never acknowledged)
    answers = load.stop()
    summary = answers.statuses()
    assert summary.get(202, 0) > 100 and summary.get(200, 0) > 50, summary

    broker.restore()
    second = start(service_factory, broker, tmp_path)
    assert re.search(r"spool of sink 'bus' .*: \d+ records \(\d+ bytes\) to deliver", "".join(second.log))
    report = wait_for_spool(second, lambda report: report["records"] == 0 and report["bytes"] == 0)
    msgids = check_nothing_answered_2xx_was_lost(broker, answers)
    print(
        "%s: answers %s; after the restart: %s; duplicates %d" % (broker.name, summary, report, len(duplicates(msgids)))
    )
    assert second.stop() == 0


def test_killed_while_replaying_loses_nothing_answered(service_factory, broker, tmp_path):
    first = start(service_factory, broker, tmp_path, replay_rate=400)
    assert first.post("/v2/data/in/orders", ingest_request(msgid="before"))[0] == 200  # a producer at work
    broker.cut()
    time.sleep(0.5)
    load = ThreadedLoad(first.port, "orders").start()
    wait_for_spool(first, lambda report: report["records"] > 3000)
    answers = load.stop()
    answers.record("before", 200)
    assert set(answers.statuses()) == {200, 202}, answers.statuses()

    broker.restore()
    report = wait_for_spool(first, lambda report: report["replayed"] > 600)
    assert report["records"] > 1000, "the replay must still be going when the service is killed"
    killed(first)

    second = start(service_factory, broker, tmp_path)
    report = wait_for_spool(second, lambda report: report["records"] == 0 and report["bytes"] == 0)
    msgids = check_nothing_answered_2xx_was_lost(broker, answers)
    twice = duplicates(msgids)
    print(
        "%s: %d spooled; killed after %d replayed; then %s; duplicates %d"
        % (broker.name, answers.count(202), len(msgids) - report["replayed"], report, len(twice))
    )
    # delivered before the kill but not yet recorded as delivered: at most the records in flight then
    assert sum(count - 1 for count in twice.values()) <= 2 * 256
    assert second.stop() == 0
