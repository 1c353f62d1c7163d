"""The YAML config: read once at start, checked whole, or the service does not start.

Two layers, as in the README's reference: the document schema below, then each
sink's own ``OPTIONS``. Every problem is reported as one line naming the key
path, e.g. ``datasets.orders.sink: no sink named 'rabit' (did you mean
'rabbit'?)``. ``${VAR}`` and ``${VAR:-default}`` in values come from the
environment; ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import yaml
from voluptuous import Any as AnyOf, Invalid, Match, MultipleInvalid, Optional as Opt, Required, Schema

import sinks
from sinks.validation import describe_invalid, did_you_mean, field_path
from tornado_ingest.auth import ApiKey, KeyRing, hash_key
from tornado_ingest.schemas import load_event_schema
from tornado_ingest.settings import NON_EMPTY, Dataset, ServerSettings, SinkSpec, schema_of, setting_names

DEFAULT_CONFIG_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.yaml")
RESERVED_RECORD_KEYS = ("obsrv_meta", "dataset", "msgid")


class ConfigError(Exception):
    """A config the service must not start with: ``<key path>: <reason>``."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__("%s: %s" % (path, reason) if path else reason)


# -- the document schema ------------------------------------------------------

SERVER_SCHEMA = schema_of(ServerSettings)
DATASET_SCHEMA = schema_of(Dataset)
# Keys every sink has, whatever its type; the others are the sink's own OPTIONS.
COMMON_SINK_SCHEMA = schema_of(SinkSpec, extra=True)
COMMON_SINK_KEYS = setting_names(SinkSpec)

_sha256_hex = Match(
    r"^[0-9a-fA-F]{64}$", msg="expected the 64 hex digits of a SHA-256 digest (tornado-ingest hash-key)"
)

API_KEY_SCHEMA = Schema(
    {
        Required("name"): NON_EMPTY,
        Opt("sha256"): _sha256_hex,
        Opt("env"): Match(r"^[A-Za-z_][A-Za-z0-9_]*$", msg="expected an environment variable name"),
        Opt("datasets", default="*"): AnyOf("*", [NON_EMPTY], msg="expected '*' or a list of dataset ids"),
    }
)

AUTH_SCHEMA = Schema({Opt("keys", default=[]): [API_KEY_SCHEMA]})

SINK_ENTRY_SCHEMA = Schema({Required("type"): NON_EMPTY}, extra=True)

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
class Config:
    server: ServerSettings
    sinks: Dict[str, SinkSpec]
    datasets: Dict[str, Dataset]
    keys: KeyRing = field(default_factory=lambda: KeyRing([]))
    source: str = "<memory>"
    digest: str = ""  # SHA-256 of the config file (of the document, when there is no file)

    def needed_sinks(self) -> List[str]:
        """The sinks some routable dataset writes to: readiness waits on these."""
        return sorted({dataset.sink for dataset in self.datasets.values() if dataset.entry_topic})


# -- loading ------------------------------------------------------------------

#: values that replace the file's, per section (the command line's flags), checked as if written there.
Overrides = Mapping[str, Mapping[str, Any]]


def load_config(path: Optional[str] = None, overrides: Optional[Overrides] = None) -> Config:
    """Read, interpolate and check a YAML config file (the packaged default if no path)."""
    path = path or DEFAULT_CONFIG_PATH
    try:
        with open(path, "rb") as stream:
            text = stream.read()
    except OSError as exc:
        raise ConfigError("", "cannot read config %s: %s" % (path, exc.strerror or exc)) from None
    config = parse_config(load_yaml(text), source=path, overrides=overrides)
    config.digest = hashlib.sha256(text).hexdigest()
    return config


def load_yaml(text: Any) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = "line %d, column %d" % (mark.line + 1, mark.column + 1) if mark else "yaml"
        raise ConfigError(where, "broken YAML: %s" % (exc.problem or exc.context)) from None
    except yaml.YAMLError as exc:
        raise ConfigError("", "broken YAML: %s" % exc) from None


def parse_config(document: Any, source: str = "<memory>", overrides: Optional[Overrides] = None) -> Config:
    """Check a config document (already parsed) and build the ``Config``."""
    if document is None:
        raise ConfigError("", "the config is empty: it needs 'sinks' and 'datasets'")
    if not isinstance(document, dict):
        raise ConfigError("", "the config must be a mapping with 'sinks' and 'datasets'")
    document = interpolate(document)
    for section, values in (overrides or {}).items():
        if isinstance(document.get(section) or {}, dict):
            document[section] = {**(document.get(section) or {}), **values}
    checked = _validate(DOCUMENT_SCHEMA, document, [])
    server = ServerSettings(**_validate(SERVER_SCHEMA, checked["server"] or {}, ["server"]))
    if server.management_port and server.management_port == server.port:
        raise ConfigError("server.management_port", "must differ from server.port (%d)" % server.port)
    sink_specs = {name: _sink_spec(name, entry) for name, entry in checked["sinks"].items()}
    if not sink_specs:
        raise ConfigError("sinks", "define at least one sink")
    base_directory = os.path.dirname(os.path.abspath(source)) if os.path.isfile(source) else os.getcwd()
    datasets = {
        dataset_id: _dataset(dataset_id, entry, sink_specs, base_directory)
        for dataset_id, entry in checked["datasets"].items()
    }
    keys = _key_ring(_validate(AUTH_SCHEMA, checked["auth"] or {}, ["auth"]), datasets)
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
    return Config(server=server, sinks=sink_specs, datasets=datasets, keys=keys, source=source, digest=digest)


def _sink_spec(name: str, entry: Dict[str, Any]) -> SinkSpec:
    path: List[Any] = ["sinks", name]
    try:
        cls = sinks.resolve_sink(entry["type"])
    except sinks.UnknownSinkType as exc:
        raise ConfigError(field_path(path + ["type"]), str(exc)) from None
    common = _validate(COMMON_SINK_SCHEMA, entry, path)
    options = {key: value for key, value in entry.items() if key != "type" and key not in COMMON_SINK_KEYS}
    return SinkSpec(
        name=name,
        type=entry["type"],
        cls=cls,
        options=_validate(cls.OPTIONS, options, path),
        **{key: common[key] for key in COMMON_SINK_KEYS},
    )


def _key_ring(auth: Dict[str, Any], datasets: Dict[str, Dataset]) -> KeyRing:
    keys: List[ApiKey] = []
    for index, entry in enumerate(auth["keys"]):
        path: List[Any] = ["auth", "keys", index]
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
                        "no dataset named %r%s" % (dataset_id, did_you_mean(dataset_id, datasets)),
                    )
            allowed = frozenset(entry["datasets"])
        keys.append(ApiKey(entry["name"], digest.lower(), allowed))
    return KeyRing(keys)


def _dataset(dataset_id: str, entry: Dict[str, Any], sink_specs: Dict[str, SinkSpec], base_directory: str) -> Dataset:
    path: List[Any] = ["datasets", dataset_id]
    if "/" in dataset_id or not dataset_id:
        raise ConfigError(field_path(path), "a dataset id must be a non-empty URL path segment (no '/')")
    spec = sink_specs.get(entry["sink"])
    if spec is None:
        raise ConfigError(
            field_path(path + ["sink"]),
            "no sink named %r%s" % (entry["sink"], did_you_mean(entry["sink"], sink_specs)),
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
    dataset = Dataset(id=dataset_id, **entry)
    _check_invalid_events(dataset, path, sink_specs)
    if dataset.schema is not None:
        try:
            dataset.event_schema = load_event_schema(dataset.schema, base_directory)
        except ValueError as exc:
            raise ConfigError(field_path(path + ["schema"]), str(exc)) from None
    return dataset


def _check_invalid_events(dataset: Dataset, path: List[Any], sink_specs: Dict[str, SinkSpec]) -> None:
    """``on_invalid`` and ``dead_letter`` go together, and only with a schema; the dead letters' sink exists."""
    if dataset.on_invalid == "dead_letter" and dataset.schema is None:
        raise ConfigError(field_path(path + ["on_invalid"]), "dead_letter needs a schema to tell bad events from good")
    if dataset.on_invalid == "dead_letter" and dataset.dead_letter is None:
        raise ConfigError(field_path(path + ["dead_letter"]), "is required with on_invalid: dead_letter")
    if dataset.dead_letter is None:
        return
    if dataset.on_invalid != "dead_letter":
        raise ConfigError(field_path(path + ["dead_letter"]), "is used only with on_invalid: dead_letter")
    name, topic = dataset.dead_letter["sink"], dataset.dead_letter["entry_topic"]
    spec = sink_specs.get(name)
    if spec is None:
        where = field_path(path + ["dead_letter", "sink"])
        raise ConfigError(where, "no sink named %r%s" % (name, did_you_mean(name, sink_specs)))
    try:
        spec.cls.check_destination(spec.options, topic)
    except ValueError as exc:
        raise ConfigError(field_path(path + ["dead_letter", "entry_topic"]), str(exc)) from None


def _validate(schema: Schema, value: Any, path: List[Any]) -> Any:
    try:
        return schema(value)
    except MultipleInvalid as exc:
        error = sorted(exc.errors, key=lambda e: [str(part) for part in e.path])[0]
        raise ConfigError(field_path(path + list(error.path)), describe_invalid(error, schema)) from None
    except Invalid as exc:
        raise ConfigError(field_path(path + list(exc.path)), exc.error_message) from None


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
