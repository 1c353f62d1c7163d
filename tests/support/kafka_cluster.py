"""A Kafka to test against: librdkafka's mock cluster, or a real one.

``KAFKA_BOOTSTRAP_SERVERS`` set: the tests use that cluster. Otherwise they
start librdkafka's mock cluster (it speaks the Kafka wire protocol; it ships
inside the confluent-kafka wheel) through its C API, with ctypes, because that
API can do what the Python binding cannot: create topics, and advertise a
broker at another address. ``CuttableKafka`` uses the latter to send every
connection of the client, bootstrap *and* the ones to the address the broker
advertises, through a ``TcpProxy``, so a test can cut the network and restore
it on the same port.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import time
import uuid
from typing import Any, Dict, List, Optional

from tests.support.tcp_proxy import TcpProxy

MOCK_API_VERSION = "2.3"  # kafka-python 3.x does not negotiate with the mock by itself


class MockUnavailable(RuntimeError):
    """librdkafka (with its mock cluster) cannot be loaded."""


_lib: Optional[ctypes.CDLL] = None


def librdkafka() -> ctypes.CDLL:
    """The librdkafka that confluent-kafka bundles (or a system one)."""
    global _lib
    if _lib is not None:
        return _lib
    candidates: List[str] = []
    try:
        import confluent_kafka

        package = os.path.dirname(os.path.abspath(confluent_kafka.__file__))
        candidates += sorted(glob.glob(os.path.join(package, os.pardir, "confluent_kafka.libs", "librdkafka*.so*")))
        candidates += sorted(glob.glob(os.path.join(package, ".dylibs", "librdkafka*.dylib")))
    except ImportError:
        pass
    system = ctypes.util.find_library("rdkafka")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            lib.rd_kafka_mock_broker_set_host_port  # noqa: B018  (a librdkafka with the mock API)
        except (OSError, AttributeError):
            continue
        _declare(lib)
        _lib = lib
        return lib
    raise MockUnavailable("librdkafka with the mock cluster API not found (pip install confluent-kafka)")


def _declare(lib: ctypes.CDLL) -> None:
    p, s, i, i32 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int32
    signatures = {
        "rd_kafka_conf_new": (p, []),
        "rd_kafka_conf_set": (i, [p, s, s, s, ctypes.c_size_t]),
        "rd_kafka_new": (p, [i, p, s, ctypes.c_size_t]),
        "rd_kafka_destroy": (None, [p]),
        "rd_kafka_mock_cluster_new": (p, [p, i]),
        "rd_kafka_mock_cluster_destroy": (None, [p]),
        "rd_kafka_mock_cluster_bootstraps": (s, [p]),
        "rd_kafka_mock_broker_set_host_port": (None, [p, i32, s, i]),
        "rd_kafka_mock_broker_set_down": (i, [p, i32]),
        "rd_kafka_mock_broker_set_up": (i, [p, i32]),
        "rd_kafka_mock_topic_create": (i, [p, s, i, i]),
        "rd_kafka_mock_partition_set_leader": (i, [p, s, i32, i32]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes


class MockCluster:
    """One librdkafka mock cluster; brokers are numbered from 1."""

    def __init__(self, brokers: int = 1):
        lib = self._lib = librdkafka()
        error = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        lib.rd_kafka_conf_set(conf, b"log_level", b"3", error, len(error))
        self._rk = lib.rd_kafka_new(0, conf, error, len(error))  # RD_KAFKA_PRODUCER: only hosts the cluster
        if not self._rk:
            raise MockUnavailable("rd_kafka_new failed: %s" % error.value.decode())
        self._cluster = lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._cluster:
            lib.rd_kafka_destroy(self._rk)
            raise MockUnavailable("rd_kafka_mock_cluster_new failed")
        self.bootstrap = lib.rd_kafka_mock_cluster_bootstraps(self._cluster).decode()

    @property
    def first_broker(self) -> tuple:
        host, _, port = self.bootstrap.split(",")[0].rpartition(":")
        return host, int(port)

    def advertise(self, host: str, port: int, broker_id: int = 1) -> None:
        """Make the broker tell clients to connect to ``host:port``."""
        self._lib.rd_kafka_mock_broker_set_host_port(self._cluster, broker_id, host.encode(), port)

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 1) -> None:
        error = self._lib.rd_kafka_mock_topic_create(self._cluster, name.encode(), partitions, replication_factor)
        if error:
            raise RuntimeError("mock topic %s not created (error %d)" % (name, error))

    def set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        """Make ``broker_id`` the partition's leader (what the controller does after a broker is lost)."""
        error = self._lib.rd_kafka_mock_partition_set_leader(self._cluster, topic.encode(), partition, broker_id)
        if error:
            raise RuntimeError("mock leader of %s[%d] not moved (error %d)" % (topic, partition, error))

    def broker_down(self, broker_id: int) -> None:
        """Close the broker's connections and refuse new ones; its partitions keep it as leader until moved."""
        self._lib.rd_kafka_mock_broker_set_down(self._cluster, broker_id)

    def broker_up(self, broker_id: int) -> None:
        self._lib.rd_kafka_mock_broker_set_up(self._cluster, broker_id)

    def close(self) -> None:
        if self._cluster:
            self._lib.rd_kafka_mock_cluster_destroy(self._cluster)
            self._lib.rd_kafka_destroy(self._rk)
            self._cluster = self._rk = None


class KafkaSite:
    """Where the tests produce and consume: an address and the options it needs."""

    def __init__(self, bootstrap: str, mock: Optional[MockCluster] = None):
        self.bootstrap = bootstrap
        self.mock = mock
        self.producer_options: Dict[str, Any] = {"api_version": MOCK_API_VERSION} if mock else {}

    @property
    def client_options(self) -> Dict[str, Any]:
        return {"api_version": (2, 3)} if self.mock else {}

    def create_topic(self, name: str, partitions: int = 1) -> str:
        if self.mock is not None:
            self.mock.create_topic(name, partitions)
            return name
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, **self.client_options)
        try:
            admin.create_topics([NewTopic(name, partitions, 1)])
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()
        return name

    def consume(self, topic: str, count: int, timeout: float = 10.0) -> list:
        """The first ``count`` messages of ``topic`` (fewer if ``timeout`` runs out).

        Partitions are assigned explicitly and read from the beginning: a
        subscription without a consumer group can miss its first assignment.
        """
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            consumer_timeout_ms=500,
            **self.client_options,
        )
        messages: list = []
        deadline = time.monotonic() + timeout
        try:
            partitions = consumer.partitions_for_topic(topic)
            while not partitions and time.monotonic() < deadline:
                time.sleep(0.1)
                partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                return messages
            consumer.assign([TopicPartition(topic, partition) for partition in sorted(partitions)])
            consumer.seek_to_beginning()
            while len(messages) < count and time.monotonic() < deadline:
                for message in consumer:
                    messages.append(message)
                    if len(messages) >= count:
                        break
        finally:
            consumer.close()
        return messages

    def consume_all(self, topic: str, timeout: float = 20.0) -> list:
        """Every message in ``topic`` now: read to each partition's end offset, duplicates included.

        A count can stop short: with a record written twice, the first ``count``
        messages leave another record unread and it looks lost.
        """
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, consumer_timeout_ms=500, **self.client_options
        )
        messages: list = []
        deadline = time.monotonic() + timeout
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            ends = consumer.end_offsets(partitions)
            while any(consumer.position(p) < ends[p] for p in partitions) and time.monotonic() < deadline:
                messages.extend(consumer)
        finally:
            consumer.close()
        return messages

    def close(self) -> None:
        if self.mock is not None:
            self.mock.close()


class CuttableKafka(KafkaSite):
    """A fresh mock cluster whose every connection goes through a ``TcpProxy``."""

    def __init__(self) -> None:
        mock = MockCluster()
        self.proxy = TcpProxy(mock.first_broker).start()
        mock.advertise(self.proxy.host, self.proxy.port)
        super().__init__(self.proxy.address, mock)

    def cut(self) -> None:
        self.proxy.cut()

    def restore(self) -> None:
        self.proxy.restore()

    def close(self) -> None:
        self.proxy.close()
        super().close()


def cuttable_or_skip() -> CuttableKafka:
    """A ``CuttableKafka``; without kafka-python or librdkafka's mock, the test is skipped (failed in CI)."""
    from tests.support import skip_or_fail

    try:
        import kafka  # noqa: F401
    except ImportError:  # pragma: no cover
        skip_or_fail("kafka-python is not installed")
    try:
        return CuttableKafka()
    except MockUnavailable as exc:
        skip_or_fail(str(exc))


def unique_topic(prefix: str) -> str:
    return "%s.%s" % (prefix, uuid.uuid4().hex[:10])
