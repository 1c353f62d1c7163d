"""The Kafka sink's options: the schema, the checks of producer options, and the producer's config.

Every default is written once: the sink's own in ``OPTIONS``, the producer's
in ``PRODUCER_DEFAULTS``. A mistyped producer option is a config error at load
(with a suggestion), not a producer that fails to build in the background.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Tuple

from voluptuous import Boolean, Invalid, Optional as Opt, Schema

from sinks.kafka import compat, confluent_compat, confluent_options
from sinks.spool.options import SPOOL_KEY, SPOOL_OPTIONS
from sinks.validation import did_you_mean, seconds

TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_VERSION = re.compile(r"^\d+(\.\d+){1,2}$")

#: producer options the sink sets itself, and why a config may not.
RESERVED = {
    "bootstrap_servers": "set bootstrap_servers beside producer, not inside it",
    "key_serializer": "records are bytes already",
    "value_serializer": "records are bytes already",
}
#: producer options whose values never appear in logs, errors or ``/health``.
SECRET_OPTIONS = ("sasl_plain_password", "ssl_password", "sasl_oauth_token_provider")
ACKS = ("all", 0, 1, -1)

#: the sink's producer defaults, where the config does not say (why: see the package docstring).
PRODUCER_DEFAULTS: Dict[str, Any] = {
    "acks": "all",
    "linger_ms": 2,  # single events 22-26 % more requests/s than at 5 ms; batches the same (bench/WHY.md)
    # kafka-python's 16 KB puts a record larger than that (a batch of 100 events is ~25 KB) in a produce batch
    # of its own, and its sender thread then costs ~150 us per record; 256 KB measured best (bench/WHY.md)
    "batch_size": 262144,
    "enable_idempotence": True,
    "reconnect_backoff_max_ms": 1000,
}


#: ``driver``: the Kafka client library the sink produces with, and whether it is installed.
DRIVERS = {"kafka-python": compat, "confluent": confluent_compat}
DEFAULT_DRIVER = "kafka-python"


def _driver(value: Any) -> str:
    if value not in DRIVERS:
        raise Invalid("expected kafka-python or confluent%s" % did_you_mean(str(value), DRIVERS))
    return str(value)


def _servers(value: Any) -> List[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise Invalid("expected 'host:port,host:port' or a list of host:port")
    servers = [item.strip() for item in items if item.strip()]
    if not servers:
        raise Invalid("expected at least one host:port")
    return servers


def _api_version(value: Any) -> Any:
    """``"2.3"``, ``2.3`` (YAML reads it as a number), ``[2, 3]`` -> ``(2, 3)``; ``"auto"`` -> None."""
    if value is None or value == "auto":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and _VERSION.match(value):
        return tuple(int(part) for part in value.split("."))
    if isinstance(value, (list, tuple)) and value and all(isinstance(p, int) for p in value):
        return tuple(value)
    raise Invalid('expected a broker version such as "2.3" or "auto"')


def _mapping(value: Any) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("expected a mapping of producer options")
    return dict(value)


def _for_driver(options: Dict[str, Any]) -> Dict[str, Any]:
    """The checks that depend on ``driver``: it is installed, and it understands every ``producer`` option."""
    driver = DRIVERS[options["driver"]]
    if not driver.installed():
        raise Invalid(driver.NOT_INSTALLED, path=["driver"])
    try:
        producer = _common_checks(options["producer"])
        if options["driver"] == "confluent":
            producer = confluent_options.check(producer, _number, _boolean)
        else:
            producer = _producer_options(producer)
        _check_idempotence(producer)
    except Invalid as exc:
        raise Invalid(exc.error_message, path=["producer"] + list(exc.path)) from None
    return dict(options, producer=producer)


class _KafkaSchema(Schema):
    """The schema of the keys, then the checks across them (``OPTIONS.schema`` stays a dict, for suggestions)."""

    def __call__(self, data: Any) -> Any:
        return _for_driver(super().__call__(data))


def _common_checks(producer: Dict[str, Any]) -> Dict[str, Any]:
    """What both drivers refuse alike: the options the sink sets itself, a bad ``api_version`` or ``acks``."""
    options = dict(producer)
    for name in options:
        if name in RESERVED:
            raise Invalid("%s is not allowed here: %s" % (name, RESERVED[name]), path=[name])
    if "api_version" in options:
        try:
            options["api_version"] = _api_version(options["api_version"])
        except Invalid as exc:
            raise Invalid(exc.error_message, path=["api_version"]) from None
    if "acks" in options and options["acks"] not in ACKS:
        raise Invalid("expected all, 0, 1 or -1", path=["acks"])
    return options


def _producer_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """kafka-python: every name one ``KafkaProducer`` knows, of the type of its default, a codec installed."""
    known = compat.producer_option_names()
    for name in options:
        if name not in known:
            raise Invalid("unknown KafkaProducer option %r%s" % (name, did_you_mean(str(name), known)), path=[name])
    _check_types(options)
    _check_compression(options)
    return options


def _check_types(options: Dict[str, Any]) -> None:
    """Each option the type of kafka-python's default for it: ``linger_ms: soon`` is refused here, not at start.

    Numeric strings (``${VAR}`` gives strings) become numbers.
    """
    defaults = compat.producer_option_defaults()
    for name, value in options.items():
        default = defaults.get(name)
        if name in ("acks", "api_version") or value is None or default is None:
            continue
        if isinstance(default, bool):
            checked = _boolean(value, path=[name])
        elif isinstance(default, (int, float)):
            checked = _number(value, whole=isinstance(default, int), path=[name])
        else:
            continue
        options[name] = checked


def _boolean(value: Any, path: List[Any]) -> bool:
    try:
        return bool(Boolean()(value))
    except Invalid:
        raise Invalid("expected true or false", path=path) from None


def _number(value: Any, whole: bool, path: List[Any]) -> Any:
    if isinstance(value, str):
        try:
            value = int(value) if whole else float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not float(value).is_integer()):
        raise Invalid("expected %s" % ("a whole number" if whole else "a number"), path=path)
    return int(value) if whole else value


def _check_compression(options: Mapping[str, Any]) -> None:
    codec = options.get("compression_type")
    if codec is None:
        return
    compressors = compat.compression_types()
    if compressors is not None and codec not in compressors:
        choices = ", ".join(str(c) for c in compressors if c is not None)
        raise Invalid("expected one of %s (or null)" % choices, path=["compression_type"])
    if not compat.codec_installed(codec):
        package = compat.CODEC_PACKAGES.get(codec, codec)
        raise Invalid(
            "%s needs the %s package (pip install %s), or choose gzip" % (codec, package, package),
            path=["compression_type"],
        )


def _check_idempotence(options: Mapping[str, Any]) -> None:
    """The idempotent producer (on by default here) refuses some settings when it is built: refuse them now."""
    if not (
        options.get("enable_idempotence", PRODUCER_DEFAULTS["enable_idempotence"]) or options.get("transactional_id")
    ):
        return
    fix = "set enable_idempotence: false to use it (the idempotent producer needs %s)"
    if options.get("acks", "all") not in ("all", -1):
        raise Invalid("acks %r: %s" % (options["acks"], fix % "acks: all"), path=["acks"])
    if options.get("retries") == 0:
        raise Invalid("retries 0: %s" % (fix % "retries"), path=["retries"])
    if options.get("max_in_flight_requests_per_connection", 1) > 5:
        raise Invalid("more than 5: %s" % (fix % "at most 5"), path=["max_in_flight_requests_per_connection"])
    version = options.get("api_version")
    if isinstance(version, tuple) and version < (0, 11):
        raise Invalid(
            "broker %s: %s" % (".".join(map(str, version)), fix % "a broker of 0.11 or later"), path=["api_version"]
        )


OPTIONS = _KafkaSchema(
    {
        Opt("driver", default=DEFAULT_DRIVER): _driver,
        Opt("bootstrap_servers", default="localhost:9092"): _servers,
        Opt("producer", default={}): _mapping,
        Opt("send_timeout", default=10.0): seconds(minimum=0.1, maximum=3600),
        SPOOL_KEY: SPOOL_OPTIONS,
    }
)


def producer_config(sink_name: str, options: Mapping[str, Any]) -> Dict[str, Any]:
    """What the driver's producer is built with (librdkafka's property names for ``driver: confluent``)."""
    if options["driver"] == "confluent":
        return confluent_options.librdkafka_config(sink_name, options)
    return kafka_python_config(sink_name, options)


def kafka_python_config(sink_name: str, options: Mapping[str, Any]) -> Dict[str, Any]:
    """What ``KafkaProducer`` is built with: the sink's defaults, then the config's ``producer``, then the servers."""
    config = dict(PRODUCER_DEFAULTS)
    config["max_block_ms"] = int(options["send_timeout"] * 1000)  # a full buffer never waits past send_timeout
    config["client_id"] = "tornado-ingest-%s" % sink_name
    known = compat.producer_option_names()
    config = {key: value for key, value in config.items() if key in known}  # an older kafka-python lacks some
    config.update(options["producer"])
    config["bootstrap_servers"] = options["bootstrap_servers"]
    return config


def secrets_of(producer_options: Mapping[str, Any]) -> Tuple[str, ...]:
    """The configured secret values, to be masked wherever text leaves the sink."""
    return tuple(str(producer_options.get(key) or "") for key in SECRET_OPTIONS)


def check_topic_name(topic: str) -> None:
    if not TOPIC_NAME.match(topic) or topic in (".", ".."):
        raise ValueError(
            "%r is not a valid Kafka topic name (1 to 249 letters, digits, '.', '_', '-'; not '.' or '..')" % topic
        )
