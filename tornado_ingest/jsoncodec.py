"""Compact UTF-8 JSON out, with orjson when it is installed (the ``speedups`` extra).

orjson serialises a record several times faster than the standard library.
Whatever it cannot write (an integer past 64 bits, a lone surrogate) goes to
the standard library, so both installs give the same answers: a value JSON
cannot carry still raises, and every record decodes to the same document.
Non-finite floats never get here: ``request.parse_json`` refuses them.
"""

from __future__ import annotations

import json
from typing import Any

orjson: Any
try:
    import orjson
except ImportError:  # the plain install: the standard library does it all
    orjson = None

_compact = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON bytes (``UnicodeEncodeError``/``ValueError`` if impossible)."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            pass  # let the standard library say what is wrong, or write it
    return _compact.encode(value).encode("utf-8")


def backend() -> str:
    return "orjson %s" % orjson.__version__ if orjson is not None else "json (standard library)"
