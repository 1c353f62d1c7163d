"""The one contract every sink meets.

A sink is a named connection from the YAML config (``sinks.<name>``) that takes
records for a destination (a Kafka topic, a RabbitMQ routing key, a file name).
The gateway builds each sink once per process, starts it on the running loop,
awaits ``send`` for every request and answers 200 only after ``send`` returned.

Contract, for anyone writing a sink:

- ``OPTIONS``: a voluptuous schema for the sink's own keys (everything in
  ``sinks.<name>`` except ``type``), with their defaults; the config checks it at
  start, before traffic, and the sink is built with what it returns: a sink
  reads ``options[key]`` and never a default of its own.
- ``check_destination(options, destination)``: refuse, at config load, a
  destination this sink could never serve (raise ``ValueError`` saying why).
- ``start()``: connect. It must not raise because a broker is down: the service
  starts anyway and ``health()`` says so.
- ``send(destination, record)``: return once the record is safely stored,
  with a ``Receipt`` when there is something to say about where it went (or
  None);
  raise ``SinkUnavailable`` when it cannot be taken now (the client gets a 503),
  ``DestinationNotFound`` when the broker says the destination does not exist,
  ``RecordTooLarge`` when the broker will never take a record that large.
  It must never block the IOLoop.
- ``health()``: a ``sinks.health.Health``: up or down, why, since when, and
  JSON-able details; secrets never appear in it.
- ``close()``: flush what is in flight, then release the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from voluptuous import Schema

from sinks.health import Health

SinkT = TypeVar("SinkT", bound="Sink")


class SinkError(Exception):
    """Base of the errors a sink raises from ``send``."""


class SinkUnavailable(SinkError):
    """The sink cannot take records right now; the client should retry later."""


class DestinationNotFound(SinkError):
    """The broker says the destination (topic, routing key) does not exist."""


class RecordTooLarge(SinkError):
    """The broker will never take a record this large (the client gets a 413)."""


def describe_error(error: BaseException) -> str:
    """``Type: message``, the type said once (kafka-python's messages begin with it already)."""
    name, text = type(error).__name__, str(error)
    if not text:
        return name
    return text if text.startswith(name) else "%s: %s" % (name, text)


class Record:
    """One downstream record, serialised once, with what brokers attach to it.

    ``value`` is the UTF-8 JSON document; ``key`` the optional message key;
    ``trace`` the request's id and W3C trace context, as (name, text) pairs, so
    a consumer can follow a record back to the request that brought it.
    """

    __slots__ = ("value", "key", "dataset", "msgid", "trace")

    def __init__(
        self,
        value: bytes,
        dataset: str,
        msgid: str,
        key: Optional[bytes] = None,
        trace: Sequence[Tuple[str, str]] = (),
    ):
        self.value = value
        self.dataset = dataset
        self.msgid = msgid
        self.key = key
        self.trace = tuple(trace)

    @property
    def header_texts(self) -> Dict[str, str]:
        """The headers a broker message carries: ``dataset``, ``msgid``, then the trace (AMQP takes text)."""
        headers = {"dataset": self.dataset, "msgid": self.msgid}
        headers.update(self.trace)
        return headers

    @property
    def headers(self) -> List[Tuple[str, bytes]]:
        """The same headers as (name, bytes) pairs (Kafka takes bytes)."""
        return [(name, text.encode("utf-8")) for name, text in self.header_texts.items()]

    def __repr__(self) -> str:
        return "Record(dataset=%r, msgid=%r, %d bytes)" % (self.dataset, self.msgid, len(self.value))


@dataclass(frozen=True)
class Receipt:
    """What a sink can say about a record it took: where it went, and whether it is only spooled.

    ``where`` is JSON-able (a Kafka topic, partition and offset; a file's path
    and byte offset; ...). ``spooled``: the record is on the sink's local spool,
    durable, and will be delivered once the broker is back (not with the broker yet).
    """

    spooled: bool = False
    where: Mapping[str, Any] = field(default_factory=dict)


class Sink:
    """Base class: subclasses set ``OPTIONS`` and implement the four methods."""

    #: voluptuous schema of this sink's options (the keys beside ``type``), defaults included.
    OPTIONS: ClassVar[Schema] = Schema({})

    #: the name this sink is registered under (``type:`` in YAML).
    type_name: ClassVar[str] = "?"

    def __init__(self, name: str, options: Mapping[str, Any]):
        """``options`` are what ``OPTIONS`` returned: checked, defaults filled in."""
        self.name = name
        self.options = options

    @classmethod
    def from_options(cls: Type[SinkT], name: str, options: Dict[str, Any]) -> SinkT:
        """Check raw ``options`` with ``OPTIONS`` (``voluptuous.Invalid`` if bad), then build the sink."""
        return cls(name, cls.OPTIONS(options))

    @classmethod
    def check_destination(cls, options: Dict[str, Any], destination: str) -> None:
        """Raise ``ValueError`` if ``destination`` can never be served."""

    async def start(self) -> None:
        raise NotImplementedError("sink %r (%s) lacks start()" % (self.name, type(self).__name__))

    async def send(self, destination: str, record: Record) -> Optional[Receipt]:
        raise NotImplementedError("sink %r (%s) lacks send()" % (self.name, type(self).__name__))

    def health(self) -> Health:
        raise NotImplementedError("sink %r (%s) lacks health()" % (self.name, type(self).__name__))

    async def close(self) -> None:
        raise NotImplementedError("sink %r (%s) lacks close()" % (self.name, type(self).__name__))

    @property
    def is_up(self) -> bool:
        return self.health().up

    def __repr__(self) -> str:
        return "<%s %r>" % (type(self).__name__, self.name)
