"""Our worker threads must not reuse a private name of ``threading.Thread``.

Python 3.13 gave ``Thread`` a ``_handle`` attribute; a subclass method of that name was
replaced by it and the spool's disk thread died on its first write. This walks every
``Thread`` subclass in the sinks (methods and ``self._x`` attributes) and checks the names
against a plain ``Thread`` on the running Python, so tox catches the next such clash on the
version that brings it.
"""

from __future__ import annotations

import ast
import pathlib
import threading
from typing import Iterator, Set, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def thread_subclasses() -> Iterator[Tuple[str, ast.ClassDef]]:
    for path in sorted((ROOT / "sinks").rglob("*.py")) + sorted((ROOT / "tornado_ingest").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(base) in ("threading.Thread", "Thread") for base in node.bases
            ):
                yield "%s:%s" % (path.relative_to(ROOT), node.name), node


def names_defined(cls: ast.ClassDef) -> Set[str]:
    names = {item.name for item in cls.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
    return names


def thread_private_names() -> Set[str]:
    plain = threading.Thread()
    return {name for name in set(dir(plain)) | set(vars(plain)) if name.startswith("_") and not name.startswith("__")}


SUBCLASSES = list(thread_subclasses())


def test_the_walk_finds_our_threads():
    assert len(SUBCLASSES) >= 3


@pytest.mark.parametrize("cls", [cls for _, cls in SUBCLASSES], ids=[name for name, _ in SUBCLASSES])
def test_no_thread_subclass_shadows_a_private_name_of_thread(cls):
    overridable = {"run"}
    clashes = sorted((names_defined(cls) & thread_private_names()) - overridable)
    assert not clashes, "%s reuses threading.Thread's %s on Python here" % (cls.name, ", ".join(clashes))
