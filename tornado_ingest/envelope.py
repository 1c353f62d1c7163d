"""The response envelope: the one shape of every answer, good or bad.

``build_envelope`` is the only place a response body is made, so no outcome
can drift from the contract of the data-in API::

    {"id": "api.data.in", "ver": "v2", "ts": "2024-05-30T23:35:48+05:30",
     "params": {"status": "SUCCESS", "msgid": "...", "resmsgid": "<uuid4>"},
     "responseCode": "OK", "result": {"message": "Data ingested successfully"}}

Failures carry ``"status": "FAILED"``, ``"result": {}`` and
``"error": {"code", "message", "trace": ""}``. A 207 (some events taken,
others not) carries ``"status": "PARTIAL"``, ``"responseCode": "MULTI_STATUS"``
and the outcome of each event in ``result``. Whatever the client sent is
echoed only where it can be written as UTF-8, so an answer always has a body.
"""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any, Dict, Optional

from tornado_ingest.errors import IngestError

INGEST_API_ID = "api.data.in"
HEALTH_API_ID = "api.health"
READY_API_ID = "api.ready"
METRICS_API_ID = "api.metrics"
API_VERSION = "v2"
SUCCESS_MESSAGE = "Data ingested successfully"
SPOOLED_MESSAGE = (
    "Data accepted: the broker cannot take it now, so it is spooled on the gateway's disk "
    "and will be delivered when the broker is back"
)
MULTI_STATUS = "MULTI_STATUS"  # the responseCode of a 207
ACCEPTED = "ACCEPTED"  # the responseCode of a 202: spooled, not with the broker yet

_clock_second = -1
_clock_text = ""


def local_time(epoch_seconds: float) -> str:
    """Local ISO-8601 time with its UTC offset, to the second: ``2024-05-30T23:35:48+05:30``."""
    return datetime.datetime.fromtimestamp(int(epoch_seconds)).astimezone().isoformat()


def local_timestamp() -> str:
    """The envelope's ``ts``: ``local_time`` of now, made once a second."""
    global _clock_second, _clock_text
    second = int(time.time())
    if _clock_second != second:
        _clock_second, _clock_text = second, local_time(second)
    return _clock_text


def encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (a client's JSON may carry lone surrogates: echo none)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def build_envelope(
    api_id: str = INGEST_API_ID,
    *,
    msgid: Optional[str] = None,
    result: Optional[Dict[str, Any]] = None,
    error: Optional[IngestError] = None,
    response_code: str = "OK",
    resmsgid: Optional[str] = None,
) -> Dict[str, Any]:
    """The envelope of one answer: a success (``response_code`` OK, or ACCEPTED for a 202), a failure
    (``error``), or a 207 (MULTI_STATUS) whose ``result`` says the outcome of each event. ``resmsgid``: a new
    uuid4 unless given (a replayed answer carries its first answer's)."""
    status = "FAILED" if error is not None else "PARTIAL" if response_code == MULTI_STATUS else "SUCCESS"
    params: Dict[str, Any] = {"status": status}
    if msgid is not None and encodable(msgid):
        params["msgid"] = msgid
    params["resmsgid"] = resmsgid or str(uuid.uuid4())
    envelope: Dict[str, Any] = {"id": api_id, "ver": API_VERSION, "ts": local_timestamp(), "params": params}
    if error is None:
        envelope["responseCode"] = response_code
        envelope["result"] = {"message": SUCCESS_MESSAGE} if result is None else result
    else:
        envelope["responseCode"] = error.response_code
        envelope["result"] = {}
        message = error.message if encodable(error.message) else error.message.encode("utf-8", "replace").decode()
        envelope["error"] = {"code": error.code, "message": message, "trace": ""}
    return envelope
