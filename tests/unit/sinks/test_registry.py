"""The sink registry: names, paths and classes resolve; a typo gets a suggestion."""

from __future__ import annotations

import pytest

import sinks
from sinks.file import FileSink
from sinks.memory import MemorySink


@pytest.mark.parametrize(
    "name, cls",
    [("file", FileSink), ("memory", MemorySink), ("sinks.memory:MemorySink", MemorySink), (FileSink, FileSink)],
)
def test_resolves_names_paths_and_classes(name, cls):
    assert sinks.resolve_sink(name) is cls


@pytest.mark.parametrize(
    "typo, suggestion", [("fiel", "file"), ("kafak", "kafka"), ("rabbit", "rabbitmq"), ("memroy", "memory")]
)
def test_a_typo_gets_the_nearest_name(typo, suggestion):
    with pytest.raises(sinks.UnknownSinkType) as caught:
        sinks.resolve_sink(typo)
    assert str(caught.value) == "no sink type named %r (did you mean %r?)" % (typo, suggestion)


@pytest.mark.parametrize(
    "target, says",
    [
        ("os:path", "is not a sink"),
        ("json:JSONDecoder", "is not a sink"),
        ("tests.unit.sinks.broken_plugin:Sink", "cannot be loaded: RuntimeError: this plug-in is broken"),
    ],
)
def test_a_path_to_something_else_is_a_clear_error(target, says):
    with pytest.raises(sinks.UnknownSinkType, match=says):
        sinks.resolve_sink(target)


def test_a_bad_path_says_what_is_missing():
    with pytest.raises(sinks.UnknownSinkType, match="has no class Nope"):
        sinks.resolve_sink("sinks.memory:Nope")
    with pytest.raises(sinks.UnknownSinkType, match="cannot be loaded"):
        sinks.resolve_sink("no_such_module:Sink")


def test_every_registered_sink_meets_the_contract():
    for name in sinks.SINK_TYPES:
        try:
            cls = sinks.resolve_sink(name)
        except sinks.UnknownSinkType:
            continue  # an optional driver is not installed
        assert issubclass(cls, sinks.Sink)
        assert cls.type_name == name
        for method in ("start", "send", "health", "close"):
            assert getattr(cls, method) is not getattr(sinks.Sink, method), "%s lacks %s()" % (name, method)


@pytest.mark.gen_test
async def test_a_sink_missing_a_method_says_which():
    class Half(sinks.Sink):
        async def start(self):
            pass

    with pytest.raises(NotImplementedError, match=r"sink 'h' \(Half\) lacks send\(\)"):
        await Half("h", {}).send("t", sinks.Record(b"{}", "d", "m"))
