"""The Kafka client libraries the sink can produce with (``driver:``), behind one small contract.

A driver takes ``Outgoing`` records on the loop and tells the sink what became
of them through the sink's one ``LoopInbox`` (see ``messages``); the sink keeps
every piece of state (health, deadlines, the spool's fates), so both drivers
look the same from outside. Drivers are imported lazily, by name, as sinks are.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any, Dict, Sequence

from sinks.handoff import BatchQueue, LoopInbox, stop_worker
from sinks.kafka.messages import Message, Outgoing
from sinks.kafka.producer_thread import ProducerThread

#: ``driver:`` value -> the class that runs it.
DRIVER_CLASSES = {
    "kafka-python": "sinks.kafka.drivers:KafkaPythonDriver",
    "confluent": "sinks.kafka.confluent_driver:ConfluentDriver",
}


class Driver:
    """The contract. Built on the loop (by ``start``); ``submit`` and ``stop`` are called on the loop only.

    - ``closed``: True once ``stop`` began; the sink refuses records then.
    - ``submit(outgoing)``: hand the record over without blocking; what becomes of it arrives in the inbox as
      ``Acknowledged`` or ``Failed``. May raise a ``SinkError`` at once (the record was never sent).
    - ``stop()``: flush what is in flight (up to ``send_timeout``), let the producer go, and take in the
      last news before returning.
    """

    @property
    def closed(self) -> bool:
        raise NotImplementedError("Kafka driver %s lacks closed" % type(self).__name__)

    def submit(self, outgoing: Outgoing) -> None:
        raise NotImplementedError("Kafka driver %s lacks submit()" % type(self).__name__)

    async def stop(self) -> None:
        raise NotImplementedError("Kafka driver %s lacks stop()" % type(self).__name__)


def start(
    name: str, sink_name: str, config: Dict[str, Any], send_timeout: float, secrets: Sequence[str], inbox: Any
) -> Driver:
    """On the loop: the driver called ``name`` (a key of ``DRIVER_CLASSES``), started."""
    module, _, attribute = DRIVER_CLASSES[name].partition(":")
    driver_class = getattr(importlib.import_module(module), attribute)
    driver: Driver = driver_class(sink_name, config, send_timeout, secrets, inbox)
    return driver


class KafkaPythonDriver(Driver):
    """kafka-python: one ``ProducerThread`` owns the ``KafkaProducer``; records reach it in per-iteration batches."""

    def __init__(
        self,
        sink_name: str,
        config: Dict[str, Any],
        send_timeout: float,
        secrets: Sequence[str],
        inbox: LoopInbox[Message],
    ) -> None:
        self._outgoing: BatchQueue[Outgoing] = BatchQueue(asyncio.get_running_loop())
        self._inbox = inbox
        self._thread = ProducerThread(sink_name, config, send_timeout, secrets, self._outgoing, inbox)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._outgoing.closed

    def submit(self, outgoing: Outgoing) -> None:
        self._outgoing.submit(outgoing)

    async def stop(self) -> None:
        await stop_worker(self._outgoing, self._thread, self._inbox)
