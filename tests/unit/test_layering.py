"""One arrow down: the sinks import nothing from the HTTP layer (``tornado_ingest``), nor from Tornado's web parts."""

from __future__ import annotations

import ast
import pathlib

import pytest

SINKS = pathlib.Path(__file__).resolve().parents[2] / "sinks"
FORBIDDEN = ("tornado_ingest", "tornado.web", "tornado.httputil", "tornado.httpserver")


def imported_modules(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


@pytest.mark.parametrize("path", sorted(SINKS.rglob("*.py")), ids=lambda path: str(path.relative_to(SINKS.parent)))
def test_a_sink_module_imports_nothing_from_above(path):
    upward = [name for name in imported_modules(path) if name.split(".")[0] == "tornado_ingest" or name in FORBIDDEN]
    assert not upward, "%s imports %s: sinks sit below the HTTP layer" % (path.name, ", ".join(upward))


def test_the_walk_sees_the_sinks():
    assert (SINKS / "base.py").exists() and len(list(SINKS.rglob("*.py"))) >= 6
