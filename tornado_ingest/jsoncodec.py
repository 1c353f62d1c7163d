"""Compact UTF-8 JSON out, with orjson when it is installed (the ``speedups`` extra).

orjson serialises a record several times faster than the standard library.
Whatever it cannot write (an integer past 64 bits, a lone surrogate) goes to
the standard library, so both installs give the same answers: a value JSON
cannot carry still raises, and every record decodes to the same document.
Non-finite floats never get here: ``request.parse_json`` refuses them.

``canonical`` is the one output that must never change from release to
release (the idempotency digest, compared across replicas of two versions in
a rolling upgrade): it is the standard library's, and orjson stands in only
where it writes those very bytes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, Iterator, Optional

orjson: Any
try:
    import orjson
except ImportError:  # the plain install: the standard library does it all
    orjson = None

_Fragment = getattr(orjson, "Fragment", None)  # orjson 3.9.15 and later: JSON text taken as it is

_compact = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_canonical = json.JSONEncoder(sort_keys=True, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


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


def canonical(value: Any) -> bytes:
    """Sorted keys, no spaces, ASCII only: the standard library's bytes, written by orjson unless they might
    differ (a batch of 100 events: 250 us the long way, 45 us with the checks)."""
    if _orjson_canonical:
        written = _sorted_by_orjson(value)
        if written is not None and _same_as_standard(written):
            return written
    return _standard_canonical(value)


def _sorted_by_orjson(value: Any) -> Optional[bytes]:
    """orjson's sorted output, or None where it cannot write the value (an integer past 64 bits, a lone
    surrogate): the standard library's to write."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return None


def _standard_canonical(value: Any) -> bytes:
    return _canonical.encode(value).encode("ascii")


def _same_as_standard(written: bytes) -> bool:
    """Whether orjson's sorted output is byte for byte the standard library's. They differ on text past
    ASCII (escaped by the standard library), on DEL (likewise), and on floats from 1e-9 to 1e-4, which
    orjson writes ``0.00001`` and ``1e-6`` where the standard library writes ``1e-05`` and ``1e-06``. A
    string that merely looks like such a float sends the value the long way, which is only slower."""
    return (
        written.isascii()
        and b"\x7f" not in written
        and _SMALL_EXPONENT.search(written) is None
        and _FOUR_ZEROS_AFTER_THE_POINT.search(written) is None
    )


# each starts with its literal so that the search skips ahead, instead of trying every position (ten times slower)
_SMALL_EXPONENT = re.compile(rb"e-(?<=[0-9]e-)[0-9]")
_FOUR_ZEROS_AFTER_THE_POINT = re.compile(rb"\.0000(?<=0\.0000)(?<![0-9]0\.0000)")


def _canonical_probes() -> Iterator[Any]:
    """Values of every kind where two JSON writers could part: floats of each decade, integers at 64 bits,
    every ASCII character, keys that sort differently by code point and by case."""
    for exponent in range(-324, 309):
        for mantissa in (1.0, 2.0980569947355117, 9.999999999999999):
            decade = float("%re%d" % (mantissa, exponent))
            if math.isfinite(decade):
                yield decade
    yield from (0.0, -0.0, -1.5e-7, 5e-324, 1.7976931348623157e308, 123456789012345678.0)
    yield from (0, -1, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, True, False, None)
    yield "".join(map(chr, range(128)))
    yield {"b": [], "a": {}, "B": 1, "_": "", "a\n": None, "aa": [{"z": 1, "y": 2}], "a b": 0}
    yield "\u00e9\u2028\U0001f600"


def _orjson_agrees() -> bool:
    """orjson does not promise the standard library's bytes, and a release of it may write some value
    otherwise: wherever ``_same_as_standard`` would trust it, hold it to the standard library on the
    probes, once at import (5 ms), or leave ``canonical`` to the standard library."""
    if orjson is None:
        return False
    for probe in _canonical_probes():
        written = _sorted_by_orjson(probe)
        if written is not None and _same_as_standard(written) and written != _standard_canonical(probe):
            return False
    return True


_orjson_canonical = _orjson_agrees()


def backend() -> str:
    return "orjson %s" % orjson.__version__ if orjson is not None else "json (standard library)"
