"""The YAML config: read once at start, checked whole, or the service does not start.

Two layers, as in the README's reference: the document schema below, then each
sink's own ``OPTIONS``. Every problem is reported as one line naming the key
path, e.g. ``datasets.orders.sink: no sink named 'rabit' (did you mean
'rabbit'?)``. ``${VAR}`` and ``${VAR:-default}`` in values come from the
environment; ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

import yaml
from voluptuous import (
    All,
    Coerce,
    Invalid,
    Length,
    Match,
    MultipleInvalid,
    Range,
    Required,
    Schema,
)
from voluptuous import (
    Any as AnyOf,
)
from voluptuous import (
    Optional as Opt,
)

import sinks
from sinks.base import Sink
from tornado_ingest.auth import ApiKey, KeyRing, hash_key
from tornado_ingest.request import field_path

DEFAULT_CONFIG_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.yaml")
RESERVED_RECORD_KEYS = ("obsrv_meta", "dataset", "msgid")


class ConfigError(Exception):
    """A config the service must not start with: ``<key path>: <reason>``."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__("%s: %s" % (path, reason) if path else reason)


# -- the document schema ------------------------------------------------------

_non_empty = All(str, Length(min=1), msg="expected a non-empty string")
_seconds = All(Coerce(float), Range(min=0), msg="expected a number of seconds (0 or more)")
_positive_seconds = All(Coerce(float), Range(min=0.1), msg="expected a number of seconds (0.1 or more)")

SERVER_SCHEMA = Schema(
    {
        Opt("port", default=3000): All(Coerce(int), Range(min=0, max=65535), msg="expected a port number (0-65535)"),
        Opt("address", default="0.0.0.0"): str,
        Opt("max_body_bytes", default=10 * 1024 * 1024): All(
            Coerce(int), Range(min=1), msg="expected a positive number of bytes"
        ),
        Opt("max_json_depth", default=100): All(
            Coerce(int), Range(min=2, max=500), msg="expected a depth from 2 to 500"
        ),
        Opt("retry_after", default=5): All(Coerce(int), Range(min=0), msg="expected a whole number of seconds"),
        Opt("drain_timeout", default=30.0): _seconds,
        Opt("max_batch_events", default=10_000): All(
            Coerce(int), Range(min=1), msg="expected a positive number of events"
        ),
        Opt("idle_timeout", default=60.0): _positive_seconds,
        Opt("body_timeout", default=60.0): _positive_seconds,
        Opt("processes", default=1): All(
            Coerce(int), Range(min=0, max=256), msg="expected a number of processes (0: one per core)"
        ),
    }
)

DEFAULT_MAX_INFLIGHT = 1000

# Options every sink has, whatever its type; the rest go to the sink's OPTIONS.
COMMON_SINK_SCHEMA = Schema(
    {
        Opt("max_inflight", default=DEFAULT_MAX_INFLIGHT): All(
            Coerce(int), Range(min=1), msg="expected a positive number of records"
        )
    },
    extra=True,
)

_sha256_hex = Match(
    r"^[0-9a-fA-F]{64}$", msg="expected the 64 hex digits of a SHA-256 digest (tornado-ingest hash-key)"
)

API_KEY_SCHEMA = Schema(
    {
        Required("name"): _non_empty,
        Opt("sha256"): _sha256_hex,
        Opt("env"): Match(r"^[A-Za-z_][A-Za-z0-9_]*$", msg="expected an environment variable name"),
        Opt("datasets", default="*"): AnyOf("*", [_non_empty], msg="expected '*' or a list of dataset ids"),
    }
)

AUTH_SCHEMA = Schema({Opt("keys", default=[]): [API_KEY_SCHEMA]})

DATASET_SCHEMA = Schema(
    {
        Required("sink"): _non_empty,
        Opt("entry_topic", default=None): AnyOf(None, _non_empty, msg="expected a non-empty string"),
        Opt("extraction_key", default="events"): _non_empty,
        Opt("dedup_key", default="id"): _non_empty,
        Opt("key", default=None): AnyOf(
            None, Match(r"^[^.]+(\.[^.]+)*$"), msg="expected a dotted path such as event.did"
        ),
    }
)

SINK_ENTRY_SCHEMA = Schema({Required("type"): _non_empty}, extra=True)

DOCUMENT_SCHEMA = Schema(
    {
        Opt("server", default={}): AnyOf(None, dict, msg="expected a mapping"),
        Required("sinks"): Schema({str: SINK_ENTRY_SCHEMA}),
        Required("datasets"): Schema({str: DATASET_SCHEMA}),
        Opt("auth", default=None): AnyOf(None, dict, msg="expected a mapping"),
    }
)


# -- what the service uses ----------------------------------------------------


@dataclass
class ServerSettings:
    port: int = 3000
    address: str = "0.0.0.0"
    max_body_bytes: int = 10 * 1024 * 1024
    max_json_depth: int = 100
    retry_after: int = 5
    drain_timeout: float = 30.0
    max_batch_events: int = 10_000
    idle_timeout: float = 60.0
    body_timeout: float = 60.0
    processes: int = 1


@dataclass
class SinkSpec:
    name: str
    type: str
    cls: Type[Sink]
    options: Dict[str, Any]
    max_inflight: int = DEFAULT_MAX_INFLIGHT

    def build(self) -> Sink:
        return self.cls(self.name, self.options)


@dataclass
class Dataset:
    id: str
    sink: str
    entry_topic: Optional[str] = None
    extraction_key: str = "events"
    dedup_key: str = "id"
    key: Optional[str] = None
    key_path: Tuple[str, ...] = field(default=())


@dataclass
class Config:
    server: ServerSettings
    sinks: Dict[str, SinkSpec]
    datasets: Dict[str, Dataset]
    keys: KeyRing = field(default_factory=lambda: KeyRing([]))
    source: str = "<memory>"

    def needed_sinks(self) -> List[str]:
        """The sinks some routable dataset writes to: readiness waits on these."""
        return sorted({dataset.sink for dataset in self.datasets.values() if dataset.entry_topic})


# -- loading ------------------------------------------------------------------


def load_config(path: Optional[str] = None) -> Config:
    """Read, interpolate and check a YAML config file (the packaged default if no path)."""
    path = path or DEFAULT_CONFIG_PATH
    try:
        with open(path, "rb") as stream:
            text = stream.read()
    except OSError as exc:
        raise ConfigError("", "cannot read config %s: %s" % (path, exc.strerror or exc)) from None
    return parse_config(load_yaml(text), source=path)


def load_yaml(text: Any) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = "line %d, column %d" % (mark.line + 1, mark.column + 1) if mark else "yaml"
        raise ConfigError(where, "broken YAML: %s" % (exc.problem or exc.context)) from None
    except yaml.YAMLError as exc:
        raise ConfigError("", "broken YAML: %s" % exc) from None


def parse_config(document: Any, source: str = "<memory>") -> Config:
    """Check a config document (already parsed) and build the ``Config``."""
    if document is None:
        raise ConfigError("", "the config is empty: it needs 'sinks' and 'datasets'")
    if not isinstance(document, dict):
        raise ConfigError("", "the config must be a mapping with 'sinks' and 'datasets'")
    document = interpolate(document)
    checked = _validate(DOCUMENT_SCHEMA, document, [])
    server = ServerSettings(**_validate(SERVER_SCHEMA, checked["server"] or {}, ["server"]))
    sink_specs = {name: _sink_spec(name, entry) for name, entry in checked["sinks"].items()}
    if not sink_specs:
        raise ConfigError("sinks", "define at least one sink")
    datasets = {
        dataset_id: _dataset(dataset_id, entry, sink_specs) for dataset_id, entry in checked["datasets"].items()
    }
    keys = _key_ring(_validate(AUTH_SCHEMA, checked["auth"] or {}, ["auth"]), datasets)
    return Config(server=server, sinks=sink_specs, datasets=datasets, keys=keys, source=source)


def _sink_spec(name: str, entry: Dict[str, Any]) -> SinkSpec:
    path = ["sinks", name]
    try:
        cls = sinks.resolve_sink(entry["type"])
    except sinks.UnknownSinkType as exc:
        raise ConfigError(field_path(path + ["type"]), str(exc)) from None
    common = _validate(COMMON_SINK_SCHEMA, entry, path)
    options = {key: value for key, value in entry.items() if key not in ("type", "max_inflight")}
    return SinkSpec(
        name=name,
        type=entry["type"],
        cls=cls,
        options=_validate(cls.OPTIONS, options, path),
        max_inflight=common["max_inflight"],
    )


def _key_ring(auth: Dict[str, Any], datasets: Dict[str, Dataset]) -> KeyRing:
    keys = []
    for index, entry in enumerate(auth["keys"]):
        path = ["auth", "keys", index]
        if ("sha256" in entry) == ("env" in entry):
            raise ConfigError(
                field_path(path),
                "give exactly one of 'sha256' (the key's digest) or 'env' (a variable holding the key)",
            )
        if entry["name"] in {key.name for key in keys}:
            raise ConfigError(field_path(path + ["name"]), "another key is named %r" % entry["name"])
        digest = entry.get("sha256")
        if digest is None:
            secret = os.environ.get(entry["env"])
            if not secret:
                raise ConfigError(field_path(path + ["env"]), "environment variable %s is not set" % entry["env"])
            digest = hash_key(secret)
        allowed = None
        if entry["datasets"] != "*":
            for dataset_id in entry["datasets"]:
                if dataset_id not in datasets:
                    raise ConfigError(
                        field_path(path + ["datasets"]),
                        "no dataset named %r%s" % (dataset_id, _did_you_mean(dataset_id, datasets)),
                    )
            allowed = frozenset(entry["datasets"])
        keys.append(ApiKey(entry["name"], digest.lower(), allowed))
    return KeyRing(keys)


def _dataset(dataset_id: str, entry: Dict[str, Any], sink_specs: Dict[str, SinkSpec]) -> Dataset:
    path = ["datasets", dataset_id]
    if "/" in dataset_id or not dataset_id:
        raise ConfigError(field_path(path), "a dataset id must be a non-empty URL path segment (no '/')")
    spec = sink_specs.get(entry["sink"])
    if spec is None:
        raise ConfigError(
            field_path(path + ["sink"]),
            "no sink named %r%s" % (entry["sink"], _did_you_mean(entry["sink"], sink_specs)),
        )
    if entry["entry_topic"] is not None:
        try:
            spec.cls.check_destination(spec.options, entry["entry_topic"])
        except ValueError as exc:
            raise ConfigError(field_path(path + ["entry_topic"]), str(exc)) from None
    for name in ("extraction_key", "dedup_key"):
        if entry[name] in RESERVED_RECORD_KEYS:
            raise ConfigError(field_path(path + [name]), "%r is already a field of every record" % entry[name])
    if entry["extraction_key"] == entry["dedup_key"]:
        raise ConfigError(field_path(path + ["dedup_key"]), "must differ from extraction_key")
    key_path = tuple(entry["key"].split(".")) if entry["key"] else ()
    return Dataset(id=dataset_id, key_path=key_path, **entry)


def _validate(schema: Schema, value: Any, path: List[Any]) -> Any:
    try:
        return schema(value)
    except MultipleInvalid as exc:
        error = sorted(exc.errors, key=lambda e: [str(part) for part in e.path])[0]
        raise ConfigError(field_path(path + list(error.path)), _reason(schema, error)) from None
    except Invalid as exc:
        raise ConfigError(field_path(path + list(exc.path)), exc.error_message) from None


def _reason(schema: Schema, error: Invalid) -> str:
    message = error.error_message
    if message == "extra keys not allowed":
        known = _keys_at(schema, error.path[:-1])
        return "unknown key%s" % _did_you_mean(str(error.path[-1]), known)
    if message == "required key not provided":
        return "is required"
    if message.startswith(("expected dict", "expected a dictionary")):
        return "expected a mapping"
    return message


def _keys_at(schema: Schema, path: Sequence[Any]) -> List[str]:
    """The literal keys a (nested) schema allows at ``path``, for suggestions."""
    node: Any = schema.schema
    for part in path:
        node = getattr(node, "schema", node)
        if isinstance(node, list) and isinstance(part, int) and node:
            node = node[0]
            continue
        if not isinstance(node, dict):
            return []
        node = next((sub for key, sub in node.items() if getattr(key, "schema", key) in (part, str)), None)
    node = getattr(node, "schema", node)
    return [str(getattr(key, "schema", key)) for key in node] if isinstance(node, dict) else []


def _did_you_mean(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, [str(c) for c in candidates], n=1)
    return " (did you mean %r?)" % close[0] if close else ""


# -- ${VAR} interpolation -----------------------------------------------------

_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(node: Any, path: Optional[List[Any]] = None) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string value."""
    path = path or []
    if isinstance(node, dict):
        return {key: interpolate(value, path + [key]) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, path + [index]) for index, value in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        return _VARIABLE.sub(lambda match: _variable_value(match, path), node)
    return node


def _variable_value(match: "re.Match[str]", path: List[Any]) -> str:
    if match.group(0) == "$${":
        return "${"
    name, default = match.group(1), match.group(2)
    value = os.environ.get(name)
    if value is not None and (value or default is None):
        return value
    if default is not None:
        return default
    raise ConfigError(
        field_path(path), "environment variable %s is not set (write ${%s:-default} to give a default)" % (name, name)
    )


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys: a second ``port:`` must not win silently."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, "duplicate key %r" % (key,), key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
