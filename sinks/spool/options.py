"""The ``spool`` option of the broker sinks: its schema, every default written once."""

from __future__ import annotations

import re
from typing import Any

from voluptuous import All, Coerce, In, Invalid, Length, Optional as Opt, Range, Required, Schema

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40})
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
#: the smallest spool worth having (a record may be several MiB).
MIN_BYTES = 1 << 20


def byte_size(value: Any) -> int:
    """A number of bytes, or a string with a unit: ``512MiB``, ``2GiB``, ``10GB``."""
    if isinstance(value, bool):
        raise Invalid("expected a size in bytes, e.g. 1073741824 or 1GiB")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = _SIZE.match(str(value))
        if match is None or match.group(2).lower() not in _UNITS:
            raise Invalid("expected a size in bytes, e.g. 1073741824 or 1GiB (units: KiB MiB GiB TiB, KB MB GB TB)")
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size < MIN_BYTES:
        raise Invalid("expected at least 1MiB")
    return size


class _NoneOr(Schema):
    """A schema that also takes null (the option left out): a mapping keeps its "did you mean" suggestions."""

    def __call__(self, data: Any) -> Any:
        return None if data is None else super().__call__(data)


#: ``spool`` in a broker sink's ``OPTIONS``: null (the default) means no spool.
SPOOL_OPTIONS = _NoneOr(
    {
        Required("directory"): All(str, Length(min=1), msg="expected a directory path"),
        Opt("max_bytes", default=1 << 30): byte_size,
        Opt("fsync", default="batch"): In(["batch", "always"], msg="expected batch or always"),
        Opt("replay_rate", default=10000): All(
            Coerce(int), Range(min=1), msg="expected a positive number of records per second"
        ),
    }
)
SPOOL_KEY = Opt("spool", default=None)
