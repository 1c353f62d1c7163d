"""Validation helpers for the config, the sinks' ``OPTIONS`` and the request rules.

Key paths (``datasets.orders.sink``, ``data[3]``), voluptuous' errors in the
project's words, "did you mean" suggestions and the one validator for seconds.
They live here, in the lowest layer, because sinks may import nothing from the
HTTP layer and both layers need them.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Iterable, List, Optional, Sequence

from voluptuous import All, Coerce, Invalid, Range, Schema


def field_path(path: Sequence[Any]) -> str:
    """``['params', 'msgid']`` -> ``params.msgid``; ``['data', 3]`` -> ``data[3]``; ``[]`` -> ``body``."""
    text = ""
    for part in path:
        part = getattr(part, "schema", part)
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text or "body"


def closest(word: str, candidates: Iterable[Any]) -> Optional[str]:
    """The candidate nearest to a mistyped ``word``, if one is near enough."""
    matches = difflib.get_close_matches(str(word), [str(candidate) for candidate in candidates], n=1)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` for the nearest candidate, or nothing."""
    match = closest(word, candidates)
    return " (did you mean %r?)" % match if match is not None else ""


def describe_invalid(error: Invalid, schema: Optional[Schema] = None, mapping: str = "a mapping") -> str:
    """A voluptuous error in the project's words; ``schema`` lets an unknown key get a suggestion."""
    message = error.error_message
    if message == "extra keys not allowed" and error.path:
        known = keys_at(schema, error.path[:-1]) if schema is not None else []
        return "unknown key%s" % did_you_mean(str(error.path[-1]), known)
    if message == "required key not provided":
        return "is required"
    if message.startswith(("expected dict", "expected a dictionary")):
        return "expected %s" % mapping
    return message


def keys_at(schema: Schema, path: Sequence[Any]) -> List[str]:
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


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise Invalid("not a finite number")
    return value


def seconds(minimum: float = 0.0, maximum: Optional[float] = None) -> Any:
    """A duration in seconds, from a number or a numeric string (``${VAR}`` gives strings)."""
    bounds = "%g or more" % minimum if maximum is None else "%g to %g" % (minimum, maximum)
    return All(
        Coerce(float), _finite, Range(min=minimum, max=maximum), msg="expected a number of seconds (%s)" % bounds
    )


#: a wait that may be zero: a delay, a grace period.
SECONDS = seconds()
#: a timeout: long enough to be met by a healthy peer or client.
TIMEOUT = seconds(minimum=0.1)
