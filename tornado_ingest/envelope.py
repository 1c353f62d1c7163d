"""The response envelope: the one shape of every answer, good or bad.

``build_envelope`` is the only place a response body is made, so no outcome
can drift from the contract of the data-in API::

    {"id": "api.data.in", "ver": "v2", "ts": "2024-05-30T23:35:48+05:30",
     "params": {"status": "SUCCESS", "msgid": "...", "resmsgid": "<uuid4>"},
     "responseCode": "OK", "result": {"message": "Data ingested successfully"}}

Failures carry ``"status": "FAILED"``, ``"result": {}`` and
``"error": {"code", "message", "trace": ""}``. Whatever the client sent is
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
API_VERSION = "v2"
SUCCESS_MESSAGE = "Data ingested successfully"

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
) -> Dict[str, Any]:
    params: Dict[str, Any] = {"status": "FAILED" if error is not None else "SUCCESS"}
    if msgid is not None and encodable(msgid):
        params["msgid"] = msgid
    params["resmsgid"] = str(uuid.uuid4())
    envelope: Dict[str, Any] = {"id": api_id, "ver": API_VERSION, "ts": local_timestamp(), "params": params}
    if error is None:
        envelope["responseCode"] = response_code  # "ACCEPTED" with a 202
        envelope["result"] = {"message": SUCCESS_MESSAGE} if result is None else result
    else:
        envelope["responseCode"] = error.response_code
        envelope["result"] = {}
        message = error.message if encodable(error.message) else error.message.encode("utf-8", "replace").decode()
        envelope["error"] = {"code": error.code, "message": message, "trace": ""}
    return envelope
