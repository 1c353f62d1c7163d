"""Data-in requests and the envelopes that answer them."""

from __future__ import annotations

import copy
import json
from typing import Any, Dict

REFERENCE_REQUEST: Dict[str, Any] = {
    "id": "api.data.in",
    "ver": "v2",
    "ts": "1711966306164",
    "params": {"msgid": "e180ecac-8f41-4f21-9a21-0b3a1a368917"},
    "data": {"eid": "INTERACT", "date": "2022-01-01", "ver": "3.0", "syncts": 1668591949682, "ets": 1668591949682},
}

JSON_HEADERS = {"Content-Type": "application/json"}
#: a request id and a W3C trace context, as a traced client sends them
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACED = {
    "Content-Type": "application/json",
    "X-Request-ID": "req-42",
    "traceparent": TRACEPARENT,
    "tracestate": "rojo=00f067aa0ba902b7",
}


def ingest_request(data: Any = None, msgid: str = "m-1", **overrides: Any) -> Dict[str, Any]:
    """A valid data-in request (the reference example unless told otherwise)."""
    request = copy.deepcopy(REFERENCE_REQUEST)
    request["params"]["msgid"] = msgid
    if data is not None:
        request["data"] = data
    request.update(overrides)
    return request


def body_of(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def envelope_of(response: Any) -> Dict[str, Any]:
    """The JSON envelope of a Tornado test-client response (checking that it says it is JSON)."""
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


def valid_by_the_rules(document: Any) -> bool:
    """The contract's request rules, written out plainly, to check the schema against."""
    if not isinstance(document, dict):
        return False
    params = document.get("params")
    data = document.get("data")
    return (
        document.get("id") == "api.data.in"
        and isinstance(document.get("ver"), str)
        and isinstance(document.get("ts"), str)
        and isinstance(params, dict)
        and isinstance(params.get("msgid"), str)
        and params["msgid"] != ""
        and (
            isinstance(data, dict)
            or (isinstance(data, list) and len(data) > 0 and all(isinstance(e, dict) for e in data))
        )
        and all(key in document for key in ("ver", "ts"))
    )
