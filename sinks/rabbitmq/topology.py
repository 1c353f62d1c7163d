"""The exchanges, queues and bindings the options ask for, declared at every connect."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping, Set

#: ``run(method, *args, **kwargs)`` calls pika's asynchronous ``method`` with a ``callback`` and returns what
#: pika passes that callback; it raises if the connection is lost meanwhile.
RunOperation = Callable[..., Awaitable[Any]]


class TopologyDeclarer:
    """Declares the ``declare`` topology (all durable) and checks that the exchange published to exists.

    A binding without a ``routing_key`` binds by the queue's name, as the
    default exchange routes. A named exchange not declared here must exist
    already: a passive declare fails the connect otherwise.
    """

    def __init__(self, declare: Mapping[str, Any], exchange: str) -> None:
        self.exchanges = declare["exchanges"]
        self.queues = declare["queues"]
        self.exchange = exchange

    async def declare(self, channel: Any, run: RunOperation) -> None:
        declared: Set[str] = set()
        for exchange in self.exchanges:
            await run(
                channel.exchange_declare,
                exchange["name"],
                exchange_type=exchange["type"],
                durable=True,
                arguments=exchange["arguments"] or None,
            )
            declared.add(exchange["name"])
        for queue in self.queues:
            await run(channel.queue_declare, queue["name"], durable=True, arguments=queue["arguments"] or None)
            for binding in queue["bind"]:
                routing_key = binding.get("routing_key", queue["name"])
                await run(channel.queue_bind, queue["name"], binding["exchange"], routing_key=routing_key)
        if self.exchange and self.exchange not in declared:
            await run(channel.exchange_declare, self.exchange, passive=True)
