"""The request bodies: the reference single event, and a batch of 100 telemetry events.

One body per kind is reused for every request (wrk sends it as it is); the
events of a batch differ from each other, as real ones would.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

MSGID = "e180ecac-8f41-4f21-9a21-0b3a1a368917"
BATCH_SIZE = 100


def event(number: int) -> Dict[str, Any]:
    return {
        "eid": "INTERACT",
        "ets": 1668591949682 + number,
        "ver": "3.0",
        "mid": "INTERACT:%032x" % (0x5EED0000 + number),
        "actor": {"id": "user-%04d" % number, "type": "User"},
        "context": {"channel": "in.ekstep", "env": "home", "did": "device-%04d" % (number % 17)},
        "edata": {"type": "CLICK", "id": "button-%d" % (number % 5)},
    }


def body(events: int) -> bytes:
    """A valid request: one event object when ``events`` is 1, else an array of that many."""
    data: Any = event(0) if events == 1 else [event(n) for n in range(events)]
    document = {"id": "api.data.in", "ver": "v2", "ts": "1711966306164", "params": {"msgid": MSGID}, "data": data}
    return json.dumps(document, separators=(",", ":")).encode()


def write_bodies(directory: str) -> Dict[str, str]:
    """Write both bodies; returns ``{"single": path, "batch": path}``."""
    paths = {}
    for kind, events in (("single", 1), ("batch", BATCH_SIZE)):
        path = paths[kind] = os.path.join(directory, "%s.json" % kind)
        with open(path, "wb") as handle:
            handle.write(body(events))
    return paths


EVENTS = {"single": 1, "batch": BATCH_SIZE}
