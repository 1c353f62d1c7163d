"""``driver: confluent``: the sink's ``producer`` options (kafka-python's names) mapped to librdkafka's.

The ``producer`` block keeps kafka-python's option names whatever the driver,
so that switching driver is one line. Each name below has a librdkafka
property and a kind; a name with no meaning for librdkafka is a config error
that says why (``NO_MEANING``) rather than a setting silently dropped. The one
exception is ``api_version``: accepted and ignored, since librdkafka asks the
broker which versions it speaks.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Tuple

from voluptuous import Invalid

from sinks.validation import did_you_mean

#: kafka-python name -> (librdkafka property, kind): "int", "bool", "str", or a converter of the checked value.
MAPPED: Dict[str, Tuple[str, Any]] = {
    "acks": ("acks", lambda value: str(value)),
    "linger_ms": ("linger.ms", "int"),
    "batch_size": ("batch.size", "int"),
    "max_request_size": ("message.max.bytes", "int"),
    "compression_type": ("compression.type", lambda value: "none" if value is None else value),
    "enable_idempotence": ("enable.idempotence", "bool"),
    "retries": ("retries", "int"),
    "retry_backoff_ms": ("retry.backoff.ms", "int"),
    "max_in_flight_requests_per_connection": ("max.in.flight.requests.per.connection", "int"),
    "request_timeout_ms": ("request.timeout.ms", "int"),
    "delivery_timeout_ms": ("message.timeout.ms", "int"),
    "buffer_memory": ("queue.buffering.max.kbytes", lambda value: max(1, int(value) // 1024)),
    "client_id": ("client.id", "str"),
    "reconnect_backoff_ms": ("reconnect.backoff.ms", "int"),
    "reconnect_backoff_max_ms": ("reconnect.backoff.max.ms", "int"),
    "connections_max_idle_ms": ("connections.max.idle.ms", "int"),
    "metadata_max_age_ms": ("metadata.max.age.ms", "int"),
    "allow_auto_create_topics": ("allow.auto.create.topics", "bool"),
    "send_buffer_bytes": ("socket.send.buffer.bytes", "int"),
    "receive_buffer_bytes": ("socket.receive.buffer.bytes", "int"),
    "security_protocol": ("security.protocol", "str"),
    "sasl_mechanism": ("sasl.mechanism", "str"),
    "sasl_plain_username": ("sasl.username", "str"),
    "sasl_plain_password": ("sasl.password", "str"),
    "sasl_kerberos_service_name": ("sasl.kerberos.service.name", "str"),
    "ssl_cafile": ("ssl.ca.location", "str"),
    "ssl_certfile": ("ssl.certificate.location", "str"),
    "ssl_keyfile": ("ssl.key.location", "str"),
    "ssl_password": ("ssl.key.password", "str"),
    "ssl_crlfile": ("ssl.crl.location", "str"),
    "ssl_check_hostname": ("ssl.endpoint.identification.algorithm", lambda value: "https" if value else "none"),
}
#: kafka-python options librdkafka has no use for, and what to do instead.
NO_MEANING = {
    "max_block_ms": "produce() never blocks with driver: confluent (a full queue is a 503 at once); remove it",
    "transactional_id": "the sink does not use transactions; remove it",
    "partitioner": "the sink uses librdkafka's murmur2_random, kafka-python's default partitioning; remove it",
    "sasl_oauth_token_provider": "not supported with driver: confluent; use driver: kafka-python",
}
IGNORED = ("api_version",)
COMPRESSION = (None, "none", "gzip", "snappy", "lz4", "zstd")

#: the sink's librdkafka defaults where ``producer`` does not say (kafka-python's PRODUCER_DEFAULTS, and what makes
#: the driver behave the same from outside: keys on the same partitions, records retried for 120 s).
DEFAULTS: Dict[str, Any] = {
    "acks": "all",
    "linger.ms": 2,
    "enable.idempotence": True,
    "reconnect.backoff.max.ms": 1000,
    "partitioner": "murmur2_random",
    "message.timeout.ms": 120000,
    # a topic the broker does not list is failed (404) after 1 s, as the kafka-python driver does
    "topic.metadata.propagation.max.ms": 1000,
}


def check(options: Dict[str, Any], number: Callable[..., Any], boolean: Callable[..., bool]) -> Dict[str, Any]:
    """The ``producer`` options checked for ``driver: confluent`` (kafka-python's names, values typed)."""
    checked = dict(options)
    for name, value in options.items():
        if name in NO_MEANING:
            raise Invalid("has no meaning with driver: confluent: %s" % NO_MEANING[name], path=[name])
        if name in IGNORED:
            continue
        if name not in MAPPED:
            known = list(MAPPED) + list(IGNORED)
            raise Invalid(
                "unknown producer option %r for driver: confluent%s" % (name, did_you_mean(str(name), known)),
                path=[name],
            )
        kind = MAPPED[name][1]
        if value is None:
            continue
        if kind == "int":
            checked[name] = number(value, whole=True, path=[name])
        elif kind == "bool":
            checked[name] = boolean(value, path=[name])
        elif kind == "str" and not isinstance(value, str):
            raise Invalid("expected a string", path=[name])
    delivery, linger = checked.get("delivery_timeout_ms"), checked.get("linger_ms", DEFAULTS["linger.ms"])
    if delivery is not None and linger is not None and delivery <= linger:
        raise Invalid("must be more than linger_ms (%s): librdkafka refuses it" % linger, path=["delivery_timeout_ms"])
    if checked.get("compression_type") not in COMPRESSION:
        choices = ", ".join(str(codec) for codec in COMPRESSION if codec is not None)
        raise Invalid("expected one of %s (or null)" % choices, path=["compression_type"])
    return checked


def librdkafka_config(sink_name: str, options: Mapping[str, Any]) -> Dict[str, Any]:
    """What ``confluent_kafka.Producer`` is built with: the defaults, the config's ``producer``, the servers."""
    config = dict(DEFAULTS, **{"client.id": "tornado-ingest-%s" % sink_name})
    for name, value in options["producer"].items():
        if name in IGNORED or value is None:
            continue
        prop, kind = MAPPED[name]
        config[prop] = kind(value) if callable(kind) else value
    config["bootstrap.servers"] = ",".join(options["bootstrap_servers"])
    return config
