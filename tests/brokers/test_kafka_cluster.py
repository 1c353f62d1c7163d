"""The Kafka sink against a three-broker cluster: a broker lost mid-load loses no acknowledged record.

librdkafka's mock cluster with three brokers and a topic replicated on all of
them, every partition led by broker 1. Under load, broker 1 goes down (its
connections closed, new ones refused); a second later its partitions get new
leaders, as a controller would elect them. With ``acks: all`` every 200 must be
in the topic afterwards, and the sink must serve on through the change.
"""

from __future__ import annotations

import asyncio
import collections

import pytest

from tests.support import skip_or_fail
from tests.support.load import post_for

PARTITIONS = 3
#: seconds from the broker going down to its partitions' new leaders (an election)
ELECTION = 1.0
CLIENTS = 16


@pytest.fixture
def cluster():
    try:
        import kafka  # noqa: F401

        from tests.support.kafka_cluster import KafkaSite, MockCluster, MockUnavailable
    except ImportError as exc:
        skip_or_fail("kafka-python is not installed: %s" % exc)
    try:
        mock = MockCluster(brokers=3)
    except MockUnavailable as exc:
        skip_or_fail(str(exc))
    site = KafkaSite(mock.bootstrap, mock)
    yield site
    site.close()


@pytest.fixture
def topic(cluster):
    from tests.support.kafka_cluster import unique_topic

    name = unique_topic("cluster")
    cluster.mock.create_topic(name, PARTITIONS, replication_factor=3)
    for partition in range(PARTITIONS):
        cluster.mock.set_leader(name, partition, 1)
    return name


@pytest.fixture
def config_document(tmp_path, cluster, topic, kafka_driver):
    return {
        "server": {"port": 0},
        "sinks": {
            "bus": {
                "type": "kafka",
                "driver": kafka_driver,
                "bootstrap_servers": cluster.bootstrap,  # all three brokers
                "producer": dict(cluster.producer_options, acks="all"),
                "send_timeout": 10,
            }
        },
        "datasets": {"telemetry": {"sink": "bus", "entry_topic": topic, "key": "event.did"}},
    }


@pytest.mark.gen_test(timeout=60)
async def test_a_broker_lost_under_load_loses_no_acknowledged_record(
    kafka_driver, app, http_server, base_url, cluster, topic, record_property
):
    moved_at = []

    async def lose_broker_one():
        await asyncio.sleep(1.5)
        cluster.mock.broker_down(1)
        await asyncio.sleep(ELECTION)
        for partition in range(PARTITIONS):
            cluster.mock.set_leader(topic, partition, 2 + partition % 2)
        moved_at.append(1.5 + ELECTION)

    figures, _ = await asyncio.gather(
        post_for(base_url, "telemetry", 6, CLIENTS, "k", data=lambda msgid: {"did": msgid}), lose_broker_one()
    )
    after_move = [o for o in figures.outcomes if o.status == 200 and o.at > moved_at[0] + 0.5]
    messages = await asyncio.get_running_loop().run_in_executor(None, cluster.consume_all, topic, 20)
    stored = [dict(message.headers)["msgid"].decode() for message in messages]
    lost = set(figures.acknowledged) - set(stored)
    summary = "kafka, 3 brokers, broker 1 lost: %s; %d after the leaders moved" % (
        figures.summary(stored),
        len(after_move),
    )
    print("\n" + summary)
    record_property("figures", summary)
    assert not lost, "acknowledged but not in the topic: %s" % sorted(lost)[:10]
    copies = collections.Counter(stored)
    twice = sorted(msgid for msgid, count in copies.items() if count > 1)
    if twice:
        # Not the sink's, and not a test failure: librdkafka's mock cluster checks sequence numbers only for
        # transactional producers, so a produce batch that broker 1 wrote but could not acknowledge before it
        # went down is written again when the idempotent producer retries it on the new leader (same producer
        # id, epoch and sequence); a Kafka broker acknowledges that retry without writing it. Seen with
        # kafka-python in 2 of 9 runs with the other core busy, never on an idle machine. Reported.
        print("the mock cluster wrote %d records twice: %s" % (len(twice), twice[:10]))
        record_property("written twice", len(twice))
        # Only a record in flight when broker 1 went down can be retried, once: each client has one request
        # in flight at a time. More, or a third copy, would be the producer's or the sink's doing.
        assert len(twice) <= CLIENTS, "%d records written twice, more than were in flight" % len(twice)
        assert max(copies[msgid] for msgid in twice) == 2, "a record was written three times or more"
    assert not figures.failed, "requests failed while the leaders moved: %s" % figures.failed[:5]
    assert len(after_move) > 100, "the sink did not serve on after the leader change"
