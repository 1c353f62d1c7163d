"""Sinks: where the gateway hands records. One module per sink type.

``SINK_TYPES`` maps the ``type:`` names of the YAML config to ``"module:Class"``
strings, imported only when a config names them, so a file-only install never
needs kafka-python or pika. Third-party sinks join through the
``tornado_ingest.sinks`` entry-point group.
"""

from __future__ import annotations

import importlib
from typing import Dict, Type, Union

from sinks.base import (  # noqa: F401  (re-exported: the sink contract)
    DestinationNotFound,
    Record,
    RecordTooLarge,
    Sink,
    SinkError,
    SinkUnavailable,
)
from sinks.health import Health  # noqa: F401  (re-exported: what health() answers)
from sinks.validation import did_you_mean

SINK_TYPES: Dict[str, str] = {
    "file": "sinks.file:FileSink",
    "kafka": "sinks.kafka:KafkaSink",
    "rabbitmq": "sinks.rabbitmq:RabbitMQSink",
    "memory": "sinks.memory:MemorySink",
}

ENTRY_POINT_GROUP = "tornado_ingest.sinks"


class UnknownSinkType(LookupError):
    """No sink is registered under that name (the message suggests one)."""


def _entry_point_types() -> Dict[str, str]:
    from importlib.metadata import entry_points

    found = entry_points()
    group = found.select(group=ENTRY_POINT_GROUP) if hasattr(found, "select") else found.get(ENTRY_POINT_GROUP, ())
    return {ep.name: ep.value for ep in group}


def available_types() -> Dict[str, str]:
    """Every registered sink type: the built-in ones, then plug-ins."""
    types = dict(SINK_TYPES)
    for name, target in _entry_point_types().items():
        types.setdefault(name, target)
    return types


def resolve_sink(type_name: Union[str, Type[Sink]]) -> Type[Sink]:
    """Return the sink class for a type name, a ``module:Class`` path or a class."""
    if isinstance(type_name, type) and issubclass(type_name, Sink):
        return type_name
    if not isinstance(type_name, str):
        raise UnknownSinkType("a sink type is a name or 'module:Class', not %r" % (type_name,))
    types = available_types()
    target = types.get(type_name)
    if target is None and ":" in type_name:
        target = type_name
    if target is None:
        hint = did_you_mean(type_name, types) or " (known: %s)" % ", ".join(sorted(types))
        raise UnknownSinkType("no sink type named %r%s" % (type_name, hint))
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # not only ImportError: a plug-in's module may fail in any way while it loads
        raise UnknownSinkType("sink type %r cannot be loaded: %s: %s" % (type_name, type(exc).__name__, exc)) from None
    found = getattr(module, class_name, None)
    if found is None:
        raise UnknownSinkType("sink type %r: %s has no class %s" % (type_name, module_name, class_name))
    if not (isinstance(found, type) and issubclass(found, Sink)):
        raise UnknownSinkType("sink type %r: %s is not a sink (a subclass of sinks.base.Sink)" % (type_name, target))
    return found
