"""Compact UTF-8 JSON out, with orjson when it is installed (the ``speedups`` extra).

orjson serialises a record several times faster than the standard library.
Whatever it cannot write (an integer past 64 bits, a lone surrogate) goes to
the standard library, so both installs give the same answers: a value JSON
cannot carry still raises, and every record decodes to the same document.
Non-finite floats never get here: ``request.parse_json`` refuses them.
"""

from __future__ import annotations

import json
from typing import Any, Dict

orjson: Any
try:
    import orjson
except ImportError:  # the plain install: the standard library does it all
    orjson = None

_Fragment = getattr(orjson, "Fragment", None)  # orjson 3.9.15 and later: JSON text taken as it is

_compact = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON bytes (``UnicodeEncodeError``/``ValueError`` if impossible)."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            pass  # let the standard library say what is wrong, or write it
    return _compact.encode(value).encode("utf-8")


def dumps_spliced(document: Dict[str, Any], key: str, written: bytes) -> bytes:
    """``dumps(document)`` where ``document[key]`` is already written as ``written`` (compact JSON of that very
    value): those bytes go in as they are, so a batch's events are not written twice."""
    if _Fragment is not None:
        try:
            return orjson.dumps({**document, key: _Fragment(written)})
        except (TypeError, orjson.JSONEncodeError):
            pass  # something beside it orjson cannot write: all of it the long way
    return dumps(document)


def backend() -> str:
    return "orjson %s" % orjson.__version__ if orjson is not None else "json (standard library)"
