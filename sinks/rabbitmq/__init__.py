"""Publish records to RabbitMQ with publisher confirms: a 200 means the broker confirmed.

Options (YAML ``sinks.<name>``, beside ``type: rabbitmq``):

- ``url`` (default ``amqp://guest:guest@localhost:5672/%2F``): the broker, as an
  AMQP URI (``amqps://`` for TLS), or a list of them: the nodes of one cluster,
  the preferred first. Query options pika knows (``?heartbeat=``...) are read,
  but the options below win where both are given. The password is never logged
  nor shown by ``/health`` (``amqp://guest:***@...``).
- ``failback_after`` (default 300): with several nodes, a lost connection or a
  failed attempt moves to the next node; once on another node than the first,
  the sink goes back to the first this many seconds later, as soon as it takes a
  TCP connection, without failing a request (0: stay until that node is lost).
- ``exchange`` (default ``""``): the exchange every record is published to. The
  default exchange routes by queue name, so ``entry_topic`` is then a queue name;
  with a named exchange ``entry_topic`` is the routing key. A named exchange not
  listed under ``declare`` must exist (it is checked at connect).
- ``declare`` (default none): topology declared at every connect, all durable.
  ``exchanges``: ``[{name, type (default direct: direct, fanout, topic,
  headers or a plugin's type), arguments (default {})}]``; ``queues``:
  ``[{name, arguments (default {}, e.g. {x-queue-type: quorum}), bind}]`` where
  ``bind`` is one ``{exchange, routing_key (default: the queue name)}`` or a
  list of them.
- ``confirm_timeout`` (default 10): seconds to wait for the broker's confirm
  before the client gets a 503. Such a record may still be stored later (the
  client's retry makes a duplicate, never a loss).
- ``max_unconfirmed`` (default 10000): records awaiting a confirm at once; more
  are answered 503 at once instead of queueing in memory.
- ``heartbeat`` (default 30): AMQP heartbeat in seconds (0 turns it off); a dead
  connection is noticed within about two of them.
- ``connect_timeout`` (default 5): seconds for one connection attempt (TCP,
  TLS, AMQP handshake); ``start`` waits at most this long for the first one.
- ``reconnect_delay`` (default 0.5) and ``reconnect_max_delay`` (default 30):
  seconds between reconnection attempts, doubling from the first to the cap
  (with jitter); reset after a successful connect. There is no attempt limit.
- ``connection_name`` (default ``tornado-ingest {sink}@{host}``: ``{sink}`` and
  ``{host}`` stand for the sink's name and the host's name): the name the
  broker shows for this connection (management UI, ``rabbitmqctl``).

Example::

    sinks:
      rabbit:
        type: rabbitmq
        url: ${RABBITMQ_URL:-amqp://guest:guest@localhost:5672/%2F}
        exchange: ingest
        declare:
          exchanges: [{name: ingest, type: topic}]
          queues: [{name: orders, bind: {exchange: ingest, routing_key: orders}}]
        confirm_timeout: 10
    datasets:
      orders: {sink: rabbit, entry_topic: orders}    # entry_topic = routing key

Every message is persistent (``delivery_mode`` 2), ``application/json``, with
headers ``dataset`` and ``msgid``, and published ``mandatory``: a message no
queue takes comes back (404 TOPIC_NOT_FOUND) instead of vanishing. A nack, a
lost connection, a missing confirm or a broker that blocks publishers (resource
alarm) answers 503 SINK_UNAVAILABLE. One connection and one confirming channel
per sink run on the service's own asyncio loop (pika's ``AsyncioConnection``);
the sink reconnects by itself.

The parts: ``options`` (the schema with every default, pika's parameters),
``nodes`` (which node to try next, when to go back to the first), ``link`` (one
connection and its channel), ``connection`` (keeps one link open, fails over
and back, moves the health),
``topology`` (declares what ``declare`` asks for), ``confirms`` (tracks the
records awaiting a confirm), ``sink`` (``RabbitMQSink``, composing them),
``errors`` (AMQP errors in a few words) and ``compat`` (every touch of pika's
private API, and the guarded import of pika).
"""

from __future__ import annotations

from sinks.rabbitmq.sink import RabbitMQSink

__all__ = ["RabbitMQSink"]
