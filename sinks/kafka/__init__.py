"""Send records to Kafka with kafka-python (or confluent-kafka: ``driver``), acknowledged by the broker.

Options (YAML ``sinks.<name>``, beside ``type: kafka``):

- ``bootstrap_servers`` (default ``localhost:9092``): ``"h1:9092,h2:9092"`` or a
  list of ``host:port``.
- ``send_timeout`` (default ``10``): seconds a record may take to be
  acknowledged; after that the client gets 503 SINK_UNAVAILABLE.
- ``driver`` (default ``kafka-python``): or ``confluent`` (confluent-kafka, librdkafka: its network
  thread runs outside the GIL; ``producer`` keeps kafka-python's names, mapped by ``confluent_options``).
- ``producer`` (default ``{}``): options passed to ``kafka.KafkaProducer`` as
  they are; a name KafkaProducer does not know is a config error.
  ``api_version`` may be written as a string (``"2.3"``). Where not set:

  - ``acks: all``: a 200 means every in-sync replica has the record;
  - ``linger_ms: 2``: records of concurrent requests share produce batches
    (measured for both drivers: single events 22-26 % more requests/s than
    at 5 ms while the service waits on the broker, not on its CPU; batches
    the same);
  - ``batch_size: 262144`` (kafka-python's is 16 KB): batches of events, tens
    of KB each, share produce batches too (the kafka-python driver only;
    librdkafka's own default is 1 MB);
  - ``enable_idempotence: true``: broker-side retries never duplicate a record;
  - ``reconnect_backoff_max_ms: 1000``: a returning broker is found within ~1 s
    (kafka-python's own default backs off to 30 s);
  - ``max_block_ms``: ``send_timeout`` (a full buffer never waits longer);
  - ``client_id: tornado-ingest-<sink name>``;
  - everything else is kafka-python's default (``retries`` until
    ``delivery_timeout_ms`` = 120 s, ``compression_type: null``,
    ``allow_auto_create_topics: true``: the broker's own setting decides).

Example::

    sinks:
      bus:
        type: kafka
        bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS:-localhost:9092}
        producer: {compression_type: gzip, linger_ms: 10}
        send_timeout: 10
    datasets:
      telemetry: {sink: bus, entry_topic: telemetry.raw, key: event.did}

Every record carries the headers ``dataset`` and ``msgid``, and the dataset's
key when one is configured. The IOLoop never waits on Kafka: records are handed
to one producer thread per sink, in batches, which calls
``KafkaProducer.send`` (that can block on metadata or a full buffer) and never
calls it for a topic whose metadata is not known yet: those records wait
aside while the metadata is fetched, so one slow topic holds up no other.
Acknowledgements come back to the loop in batches, one
``call_soon_threadsafe`` per burst. A topic the broker says does not exist is
``DestinationNotFound`` (404); no acknowledgement within ``send_timeout`` is
``SinkUnavailable`` (503). A record answered 503 may still reach Kafka later
(the producer keeps retrying it until ``delivery_timeout_ms``): consumers
deduplicate on ``msgid``. The service starts with Kafka down; the producer is
built, and rebuilt, in the producer thread, and ``health()`` says why the
sink is down.

The parts: ``options`` (the schema, the producer's defaults and config),
``sink`` (the loop side: send, ``send_timeout``, health, close),
``producer_thread`` (the thread that owns the ``KafkaProducer``), ``messages``
(what goes between them), ``waiting_room`` (records waiting for their topic's
metadata), ``probe`` (health while idle), ``deadlines`` (``send_timeout`` on the
loop) and ``compat`` (the only place that touches kafka-python's internals);
``drivers`` (the contract between the sink and a driver, and kafka-python's),
``errors`` (a driver's error as 404, 413 or 503). ``driver: confluent``:
``confluent_driver`` (``produce`` on the loop), ``poll_thread`` (the one caller
of ``poll``: delivery reports back through the inbox), ``confluent_probe``,
``confluent_options`` and ``confluent_compat``.
"""

from __future__ import annotations

from sinks.kafka.sink import KafkaSink

__all__ = ["KafkaSink"]
