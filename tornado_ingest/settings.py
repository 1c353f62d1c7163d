"""The settings of ``server``, ``sinks.<name>`` and ``datasets.<id>``, each declared once: default, check, meaning.

The dataclasses are what the service reads; the voluptuous schemas that check
the YAML are made from them by ``schema_of``, so no default is written twice.
Command-line flags are written into the document before it is checked, so a
flag gets the same check as the key it overrides.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import urllib.parse
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Dict, Optional, Sequence, Tuple, Type, Union

from voluptuous import (
    All,
    Any as AnyOf,
    Boolean,
    Coerce,
    In,
    Invalid,
    Length,
    Match,
    MultipleInvalid,
    Optional as Opt,
    Range,
    Required,
    Schema,
)

from sinks.base import Sink
from sinks.validation import SECONDS, TIMEOUT, describe_invalid
from tornado_ingest import event_loop
from tornado_ingest.schemas import EventSchema


def setting(default: Any, check: Any, meaning: str) -> Any:
    """A key the YAML may set: its default, its voluptuous check and what it means."""
    return field(default=default, metadata={"check": check, "meaning": meaning})


def required_setting(check: Any, meaning: str) -> Any:
    return field(metadata={"check": check, "meaning": meaning})


def setting_names(cls: Type[Any]) -> Tuple[str, ...]:
    """The keys a settings dataclass reads from the YAML."""
    return tuple(declared.name for declared in fields(cls) if "check" in declared.metadata)


def meaning_of(cls: Type[Any], name: str) -> str:
    return {f.name: f.metadata.get("meaning", "") for f in fields(cls)}[name]


def schema_of(cls: Type[Any], extra: bool = False) -> Schema:
    """The voluptuous schema of a settings dataclass; fields without a check are derived, not read."""
    keys: Dict[Any, Any] = {}
    for declared in fields(cls):
        if "check" in declared.metadata:
            key = (
                Required(declared.name) if declared.default is MISSING else Opt(declared.name, default=declared.default)
            )
            keys[key] = declared.metadata["check"]
    return Schema(keys, extra=extra)


def _networks(value: Any) -> Tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise Invalid("expected a list of addresses or networks (CIDR), e.g. [10.0.0.0/8]")
    for index, cidr in enumerate(value):
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            raise Invalid("expected an address or a network (CIDR), e.g. 10.0.0.0/8", path=[index]) from None
    return tuple(str(cidr) for cidr in value)


def _event_loop(value: Any) -> str:
    if value not in event_loop.CHOICES:
        raise Invalid("expected %s" % ", ".join(event_loop.CHOICES))
    if value == "uvloop" and not event_loop.uvloop_installed():
        raise Invalid("uvloop is not installed: pip install 'tornado-ingest[speedups]', or auto or asyncio")
    return str(value)


def _whole(minimum: int, maximum: Optional[int], message: str) -> Any:
    return All(Coerce(int), Range(min=minimum, max=maximum), msg=message)


NON_EMPTY = All(str, Length(min=1), msg="expected a non-empty string")


@dataclass
class ServerSettings:
    port: int = setting(3000, _whole(0, 65535, "expected a port number (0-65535)"), "TCP port (0: any free port)")
    address: str = setting("0.0.0.0", str, "address to listen on")
    max_body_bytes: int = setting(
        10 * 1024 * 1024, _whole(1, None, "expected a positive number of bytes"), "largest body accepted"
    )
    max_json_depth: int = setting(
        100, _whole(2, 500, "expected a depth from 2 to 500"), "deepest nesting of objects and arrays accepted"
    )
    retry_after: int = setting(
        5, _whole(0, None, "expected a whole number of seconds"), "seconds, sent as Retry-After with every 503"
    )
    drain_timeout: float = setting(30.0, SECONDS, "seconds a stop waits for requests in flight")
    max_batch_events: int = setting(
        10_000, _whole(1, None, "expected a positive number of events"), "most events in one batch"
    )
    idle_timeout: float = setting(60.0, TIMEOUT, "seconds a connection may stay without a complete request head")
    body_timeout: float = setting(60.0, TIMEOUT, "seconds a request body may take to arrive")
    processes: int = setting(
        1, _whole(0, 256, "expected a number of processes (0: one per core)"), "worker processes (0: one per core)"
    )
    log_format: str = setting(
        "text", In(["text", "json"], msg="expected text or json"), "text: a line for people; json: one object a line"
    )
    trusted_proxies: Sequence[str] = setting(
        (), _networks, "proxies (CIDRs) whose X-Forwarded-For names the client in the access log"
    )
    management_port: Optional[int] = setting(
        None,
        AnyOf(None, _whole(0, 65535, "expected a port number (0-65535)"), msg="expected a port number (0-65535)"),
        "port of the operator's listener (/metrics, /health in detail, /ready); none: no such listener",
    )
    management_address: Optional[str] = setting(
        None, AnyOf(None, str, msg="expected an address"), "address of the operator's listener (default: address)"
    )
    shutdown_delay: float = setting(
        0.0, SECONDS, "seconds a stop keeps serving, /ready already 503, before the listener closes"
    )
    event_loop: str = setting(
        "auto", _event_loop, "auto: uvloop when installed (the speedups extra), else asyncio; asyncio; uvloop"
    )


@dataclass
class SinkSpec:
    """A configured sink: its class and checked options, and what every sink has whatever its type."""

    name: str
    type: str
    cls: Type[Sink]
    options: Dict[str, Any]
    max_inflight: int = setting(
        1000, _whole(1, None, "expected a positive number of records"), "most records waiting on the sink at once"
    )

    def build(self) -> Sink:
        return self.cls(self.name, self.options)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> float:
    """Seconds, or a number with a unit: ``90``, ``"30s"``, ``"15m"``, ``"24h"``, ``"7d"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise Invalid("expected a duration: seconds, or a number with s, m, h or d (24h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _redis_url(value: Any) -> str:
    if not isinstance(value, str) or urllib.parse.urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise Invalid("expected a redis://, rediss:// or unix:// URL")
    return value


@dataclass(frozen=True)
class Idempotency:
    """A dataset's retry-safe requests (``datasets.<id>.idempotency``): ``params.msgid`` is the key."""

    window: float = setting(86400.0, _duration, "how long a 200 is remembered: seconds, or 30m, 24h, 7d")
    store: str = setting(
        "memory", AnyOf("memory", "redis", msg="expected memory or redis"), "where answers are remembered"
    )
    url: Optional[str] = setting(
        None,
        AnyOf(None, _redis_url, msg="expected a redis://, rediss:// or unix:// URL"),
        "the Redis to share them through (store: redis)",
    )
    max_keys: int = setting(
        100_000, _whole(1, None, "expected a positive number of keys"), "most answers kept at once (store: memory)"
    )
    wait: float = setting(15.0, SECONDS, "seconds a request waits for the first one with its msgid, still in flight")
    in_flight_ttl: float = setting(
        60.0, TIMEOUT, "seconds a msgid in flight stays reserved in Redis should its replica die (store: redis)"
    )
    when_store_down: str = setting(
        "accept",
        AnyOf("accept", "refuse", msg="expected accept or refuse"),
        "accept: write without the check (logged, counted); refuse: 503",
    )
    timeout: float = setting(0.5, TIMEOUT, "seconds a call to Redis may take before the store counts as down")

    def __post_init__(self) -> None:
        if self.store == "redis" and importlib.util.find_spec("redis") is None:
            raise Invalid("store: redis needs the redis package: pip install 'tornado-ingest[redis]'", path=["store"])
        if self.store == "redis" and self.url is None:
            raise Invalid("store: redis needs url (redis://host:6379/0)", path=["url"])
        if self.store == "memory" and self.url is not None:
            raise Invalid("url is for store: redis", path=["url"])


def _idempotency(value: Any) -> Optional[Idempotency]:
    if value is None:
        return None
    schema = schema_of(Idempotency)
    try:
        return Idempotency(**schema(value))
    except MultipleInvalid as exc:  # one error, in the project's words, with its "did you mean"
        error = sorted(exc.errors, key=lambda e: [str(part) for part in e.path])[0]
        raise Invalid(describe_invalid(error, schema), path=list(error.path)) from None


@dataclass
class Dataset:
    id: str
    sink: str = required_setting(NON_EMPTY, "the name of a sink")
    entry_topic: Optional[str] = setting(
        None, AnyOf(None, NON_EMPTY, msg="expected a non-empty string"), "topic, routing key or file name"
    )
    extraction_key: str = setting("events", NON_EMPTY, "name of the events array in a batch record")
    dedup_key: str = setting("id", NON_EMPTY, "name of the batch id (the request's msgid) in a batch record")
    key: Optional[str] = setting(
        None,
        AnyOf(None, Match(r"^[^.]+(\.[^.]+)*$"), msg="expected a dotted path such as event.did"),
        "dotted path into the record whose value becomes the message key",
    )
    schema: Union[None, str, Dict[str, Any]] = setting(
        None,
        AnyOf(None, NON_EMPTY, dict, msg="expected a JSON Schema, or the path of a file holding one"),
        "a JSON Schema every event must meet (inline, or a file's path, relative to the config file)",
    )
    on_invalid: str = setting(
        "reject",
        In(["reject", "dead_letter"], msg="expected reject or dead_letter"),
        "an event that breaks the schema: refuse the request (reject), or send it to dead_letter",
    )
    dead_letter: Optional[Dict[str, str]] = setting(
        None,
        AnyOf(None, Schema({Required("sink"): NON_EMPTY, Required("entry_topic"): NON_EMPTY})),
        "where the events that break the schema go, with their errors: {sink, entry_topic}",
    )
    batch: str = setting(
        "one_record",
        In(["one_record", "per_event"], msg="expected one_record or per_event"),
        "one_record: a request is one record; per_event: each event is a record of its own",
    )
    receipts: bool = setting(False, Boolean(), "every answer says where each record went")
    idempotency: Optional[Idempotency] = setting(
        None, _idempotency, "retry-safe requests: a msgid answered 200 gets that answer again, nothing written twice"
    )
    key_path: Tuple[str, ...] = field(init=False, default=())
    event_schema: Optional[EventSchema] = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key_path = tuple(self.key.split(".")) if self.key else ()
