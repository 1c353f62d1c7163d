"""A dataset's event schema (``datasets.<id>.schema``): a JSON Schema, compiled once, checked on every event.

jsonschema-rs (the ``schemas`` extra) validates: it knows drafts 4, 6, 7,
2019-09 and 2020-12 (``$schema`` says which; 2020-12 when it says nothing),
and on a batch of 100 events it takes about 60 µs where the jsonschema package
takes 6 ms and fastjsonschema, which knows no 2020-12, 260 µs. Valid events
cost one ``is_valid`` each; only a bad one is looked at closely, to name each
field that breaks the schema.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import yaml

from sinks.validation import field_path

jsonschema_rs: Any
try:  # optional: only datasets with a schema need it
    import jsonschema_rs
except ImportError:  # pragma: no cover - exercised only without the extra
    jsonschema_rs = None

INSTALL_HINT = "dataset schemas need jsonschema-rs: pip install 'tornado-ingest[schemas]'"
#: at most this many messages in a refusal; the rest are counted
MAX_MESSAGES = 20

#: a field of an event (its path: names and indexes) and what is wrong with it
Problem = Tuple[List[Union[str, int]], str]
#: event index -> its problems
Problems = Dict[int, List[Problem]]


class EventSchema:
    def __init__(self, schema: Mapping[str, Any], source: str) -> None:
        if jsonschema_rs is None:
            raise ValueError(INSTALL_HINT)
        try:
            self._validator = jsonschema_rs.validator_for(dict(schema))
        except Exception as exc:  # an invalid schema: its own words, first line
            raise ValueError("not a valid JSON Schema: %s" % str(exc).strip().splitlines()[0]) from None
        self.source = source

    def problems(self, events: Sequence[Any]) -> Problems:
        """The events that break the schema, by index, each with a message per bad field (in field order: the
        validator's own order differs from one version to the next)."""
        found: Problems = {}
        for index, event in enumerate(events):
            if not self._validator.is_valid(event):
                problems = [_describe(error) for error in self._validator.iter_errors(event)]
                found[index] = sorted(problems, key=lambda problem: ([str(part) for part in problem[0]], problem[1]))
        return found


def _describe(error: Any) -> Problem:
    path = list(error.instance_path)
    missing = getattr(error.kind, "property", None)  # "required": name the property that is missing
    if isinstance(missing, str):
        path.append(missing)
    return path, error.message


def describe(problem: Problem, *prefix: Union[str, int]) -> str:
    """``data[3].eid: "eid" is a required property`` (the field's path behind ``prefix``)."""
    path, message = problem
    return "%s: %s" % (field_path([*prefix, *path]) if prefix or path else "event", message)


def refusal(problems: Problems, batch: bool) -> str:
    """Every bad field of every bad event, the first MAX_MESSAGES of them, then how many more."""
    messages = [
        describe(problem, *(("data", index) if batch else ("data",)))
        for index in sorted(problems)
        for problem in problems[index]
    ]
    shown = messages[:MAX_MESSAGES]
    more = len(messages) - len(shown)
    return "; ".join(shown) + (" (and %d more)" % more if more else "")


def load_event_schema(value: Union[str, Mapping[str, Any]], base_directory: str) -> EventSchema:
    """A schema written inline, or the path of a JSON or YAML file (relative to the config file's directory)."""
    if isinstance(value, str):
        path = value if os.path.isabs(value) else os.path.join(base_directory, value)
        try:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
        except OSError as exc:
            raise ValueError("cannot read the schema file %s: %s" % (path, exc.strerror or exc)) from None
        try:
            loaded = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ValueError("the schema file %s is not JSON or YAML: %s" % (path, exc)) from None
        if not isinstance(loaded, dict):
            raise ValueError("the schema file %s holds no JSON Schema (an object)" % path)
        return EventSchema(loaded, path)
    return EventSchema(value, "inline")
