"""Hold librdkafka's mock Kafka cluster in a process of its own, for the Kafka sink.

The mock cluster lives as long as the confluent-kafka client that created it,
so this process keeps one, prints the broker's ``host:port`` on stdout and
waits until stdin closes or SIGTERM. It keeps every message in memory: the
bench starts one per service start, so that memory goes with it.

    python -m bench.kafka_mock
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        import confluent_kafka
    except ImportError:
        print("ERROR confluent-kafka is not installed (it carries librdkafka's mock cluster)", flush=True)
        return 1
    holder = confluent_kafka.Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "", "log_level": 3})
    brokers = holder.list_topics(timeout=10).brokers
    address = ",".join("%s:%d" % (broker.host, broker.port) for broker in brokers.values())
    print("BOOTSTRAP %s" % address, flush=True)
    try:
        sys.stdin.buffer.read()  # returns when the bench closes our stdin, or dies
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
