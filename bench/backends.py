"""Per-sink setup: the sink's config, its broker, and clearing what the runs leave behind.

Each backend says why it cannot run (``unavailable``) instead of failing the
whole bench; ``config`` gives the service's ``sinks.<name>`` entry; ``clear``
runs after every measurement so nothing grows without bound; ``close`` at the
end of a service's life.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import uuid
from typing import Any, Dict, List, Optional

from bench.procs import Proc, Processes

TOPIC = "bench"


def _missing_module(*names: str) -> Optional[str]:
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


class Backend:
    name = ""
    topic = TOPIC
    dataset: Dict[str, Any] = {}  # the bench dataset's options beside sink and entry_topic
    event_loop = "asyncio"  # the service's --event-loop (bench.loops), when it has the flag
    management = False  # open the management listener (its /health shows each sink's details)

    def unavailable(self) -> Optional[str]:
        return None

    def config(self, workdir: str, procs: Processes, cpu: Optional[int]) -> Dict[str, Any]:
        raise NotImplementedError

    def clear(self) -> None:
        """After each measurement: drop what the sink wrote."""

    def close(self) -> None:
        """When the service is stopped."""


class FileBackend(Backend):
    name = "file"

    def __init__(self) -> None:
        self.directory: Optional[str] = None

    def config(self, workdir: str, procs: Processes, cpu: Optional[int]) -> Dict[str, Any]:
        self.directory = os.path.join(workdir, "file-sink-%s" % uuid.uuid4().hex[:8])
        return {"type": "file", "directory": self.directory}

    def clear(self) -> None:
        # The sink notices a file moved away and starts it anew.
        if self.directory and os.path.isdir(self.directory):
            for entry in os.listdir(self.directory):
                try:
                    os.unlink(os.path.join(self.directory, entry))
                except OSError:
                    pass

    def close(self) -> None:
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


#: what every event of the bench's payloads meets: the cost of checking a batch of 100 against it is measured
EVENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["eid", "ets", "ver", "mid", "actor", "context", "edata"],
    "properties": {
        "eid": {"enum": ["INTERACT", "IMPRESSION", "START", "END"]},
        "ets": {"type": "integer", "minimum": 0},
        "ver": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+$"},
        "mid": {"type": "string"},
        "actor": {"type": "object", "required": ["id", "type"]},
        "context": {"type": "object", "required": ["channel", "did"]},
        "edata": {"type": "object", "required": ["type"]},
    },
}


class FileSchemaBackend(FileBackend):
    """The file sink, its dataset checking every event against a JSON Schema (``datasets.<id>.schema``)."""

    name = "file-schema"
    dataset = {"schema": EVENT_SCHEMA}

    def unavailable(self) -> Optional[str]:
        missing = _missing_module("jsonschema_rs")
        return "Python module 'jsonschema_rs' is not installed (the schemas extra)" if missing else None


class FileUvloopBackend(FileBackend):
    """The file sink with the service on uvloop (the speedups extra), against the ceiling on the plain loop."""

    name = "file-uvloop"
    event_loop = "uvloop"


class FileIdempotencyBackend(FileBackend):
    """The file sink, its dataset retry-safe with the in-process store; wrk sends a fresh msgid per request."""

    name = "file-idempotency"
    dataset = {"idempotency": {"window": "24h"}}


class FileReceiptsBackend(FileBackend):
    """The file sink, every answer carrying receipts (``receipts: true`` on the dataset)."""

    name = "file-receipts"
    dataset = {"receipts": True}


KAFKA_DRIVERS = ("kafka-python", "confluent")


class KafkaBackend(Backend):
    """librdkafka's mock cluster in a helper process; kafka-python 3.x needs api_version 2.3 with it.

    ``driver`` is the sink's ``driver`` option; kafka-python, the sink's default, is left unsaid so
    the bench also drives builds that predate the option.
    """

    name = "kafka"

    def __init__(self, driver: str = "kafka-python") -> None:
        self.driver = driver
        self.holder: Optional[Proc] = None
        self.procs: Optional[Processes] = None

    def unavailable(self) -> Optional[str]:
        needs = ("confluent_kafka",) if self.driver == "confluent" else ("kafka", "confluent_kafka")
        missing = _missing_module(*needs)
        if missing:
            return (
                "Python module %r is not installed "
                "(the kafka sink's %s driver, or confluent-kafka for the mock cluster)" % (missing, self.driver)
            )
        return None

    def config(self, workdir: str, procs: Processes, cpu: Optional[int]) -> Dict[str, Any]:
        self.procs = procs
        self.holder = procs.start(
            "kafka-mock-%s" % uuid.uuid4().hex[:6], [sys.executable, "-m", "bench.kafka_mock"], cpu=cpu
        )
        bootstrap = _read_bootstrap(self.holder)
        if self.driver == "confluent":
            return {"type": "kafka", "driver": "confluent", "bootstrap_servers": bootstrap}
        return {"type": "kafka", "bootstrap_servers": bootstrap, "producer": {"api_version": "2.3"}}

    def close(self) -> None:
        if self.holder is not None and self.procs is not None:
            self.procs.stop(self.holder)
            self.holder = None


def _read_bootstrap(holder: Proc, timeout: float = 20.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in holder.log_tail(50).splitlines():
            if line.startswith("BOOTSTRAP "):
                return line.split(" ", 1)[1].strip()
            if line.startswith("ERROR "):
                raise RuntimeError(line[6:])
        if not holder.alive():
            break
        time.sleep(0.1)
    raise RuntimeError("the mock Kafka cluster did not start:\n%s" % holder.log_tail())


class RabbitBackend(Backend):
    """A durable queue of our own, declared by the sink, purged after each measurement, deleted at the end."""

    name = "rabbitmq"

    def __init__(self, url: str) -> None:
        self.url = url
        self.queues: List[str] = []

    def unavailable(self) -> Optional[str]:
        missing = _missing_module("pika")
        if missing:
            return "Python module 'pika' is not installed"
        try:
            self._channel_do(lambda channel: None)
        except Exception as exc:
            return "RabbitMQ unreachable at %s: %s" % (safe_url(self.url), str(exc) or repr(exc))
        return None

    def config(self, workdir: str, procs: Processes, cpu: Optional[int]) -> Dict[str, Any]:
        queue = "tornado-ingest-bench-%s" % uuid.uuid4().hex[:8]
        self.queues.append(queue)
        self.topic = queue  # the default exchange routes by queue name
        return {"type": "rabbitmq", "url": self.url, "declare": {"queues": [{"name": queue}]}}

    def clear(self) -> None:
        queues = list(self.queues)
        self._quietly(lambda channel: [channel.queue_purge(queue) for queue in queues])

    def close(self) -> None:
        queues, self.queues = list(self.queues), []
        self._quietly(lambda channel: [channel.queue_delete(queue) for queue in queues])

    def _quietly(self, action: Any) -> None:
        try:
            self._channel_do(action)
        except Exception as exc:
            print("bench: rabbitmq cleanup: %s" % (str(exc) or repr(exc)), file=sys.stderr)

    def _channel_do(self, action: Any) -> None:
        import pika

        parameters = pika.URLParameters(self.url)
        parameters.socket_timeout = parameters.blocked_connection_timeout = 5
        connection = pika.BlockingConnection(parameters)
        try:
            action(connection.channel())
        finally:
            connection.close()


def safe_url(url: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":%s@" % parts.password, ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


#: every server the bench can start besides the ceiling, in the order the tables show them
SINKS = ("file", "file-uvloop", "file-schema", "file-idempotency", "file-receipts", "kafka", "rabbitmq")


def make_backends(names: List[str], rabbitmq_url: str, kafka_driver: str = "kafka-python") -> List[Backend]:
    known = {
        "file": FileBackend,
        "file-uvloop": FileUvloopBackend,
        "file-schema": FileSchemaBackend,
        "file-idempotency": FileIdempotencyBackend,
        "file-receipts": FileReceiptsBackend,
        "kafka": lambda: KafkaBackend(kafka_driver),
        "rabbitmq": lambda: RabbitBackend(rabbitmq_url),
    }
    return [known[name]() for name in names]
