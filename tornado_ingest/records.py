"""The downstream record format, built and serialised once per request.

A single event (``data`` is an object) becomes::

    {"event": {...}, "obsrv_meta": M, "dataset": "<id>", "msgid": "<msgid>"}

a batch (``data`` is an array) becomes::

    {"events": [...], "id": "<msgid>", "obsrv_meta": M, "dataset": "<id>", "msgid": "<msgid>"}

where ``events`` and ``id`` are the dataset's ``extraction_key`` and
``dedup_key``, and ``M`` is the ingestion metadata downstream pipelines expect.
With ``batch: per_event`` each event of a batch is a single-event record of
its own. An event that breaks the dataset's schema, under ``on_invalid:
dead_letter``, becomes a dead letter::

    {"event": {...}, "errors": ["eid: ..."], "index": 3, "obsrv_meta": M, "dataset": "<id>", "msgid": "<msgid>"}
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from sinks.base import Record
from tornado_ingest import jsoncodec
from tornado_ingest.errors import InvalidInput
from tornado_ingest.schemas import Problems, describe
from tornado_ingest.settings import Dataset


def obsrv_meta(syncts_ms: int) -> Dict[str, Any]:
    return {
        "syncts": syncts_ms,
        "flags": {},
        "timespans": {},
        "error": {},
        "source": {"connector": "api", "connectorInstance": "api"},
    }


def record_document(dataset: Dataset, data: Any, msgid: str, syncts_ms: Optional[int] = None) -> Dict[str, Any]:
    meta = obsrv_meta(int(time.time() * 1000) if syncts_ms is None else syncts_ms)
    if isinstance(data, list):
        return {
            dataset.extraction_key: data,
            dataset.dedup_key: msgid,
            "obsrv_meta": meta,
            "dataset": dataset.id,
            "msgid": msgid,
        }
    return {"event": data, "obsrv_meta": meta, "dataset": dataset.id, "msgid": msgid}


def encode_document(document: Dict[str, Any], written: Optional[Tuple[str, bytes]] = None) -> bytes:
    """Compact UTF-8 JSON; a value JSON cannot carry is the client's error. ``written``: a key whose value is
    written already, and its JSON (the parse's writing of a batch), taken as it is."""
    try:
        if written is not None:
            return jsoncodec.dumps_spliced(document, *written)
        return jsoncodec.dumps(document)
    except UnicodeEncodeError:
        raise InvalidInput("data contains a lone surrogate (\\ud800-\\udfff): not valid Unicode") from None
    except ValueError:
        raise InvalidInput("data contains a number out of range (JSON has no Infinity or NaN)") from None
    except RecursionError:
        raise InvalidInput("data is nested too deep") from None


def record_key(document: Dict[str, Any], path: Sequence[str]) -> Optional[bytes]:
    """The message key at a dotted path of the record; None where there is none."""
    value: Any = document
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    return str(value).encode("utf-8")


def record_for_request(
    dataset: Dataset,
    data: Any,
    msgid: str,
    trace: Sequence[Tuple[str, str]] = (),
    data_json: Optional[bytes] = None,
) -> Record:
    """The record a sink receives for one request (``trace``: the request id and trace context it carries;
    ``data_json``: ``data`` already written as JSON, when the parse wrote it)."""
    document = record_document(dataset, data, msgid)
    key = record_key(document, dataset.key_path) if dataset.key_path else None
    written = None
    if data_json is not None:
        written = (dataset.extraction_key if isinstance(data, list) else "event", data_json)
    return Record(encode_document(document, written), dataset=dataset.id, msgid=msgid, key=key, trace=trace)


class Delivery(NamedTuple):
    """One record of a request, where it goes, and which of the request's events it carries (their indexes)."""

    record: Record
    sink: str
    topic: str
    events: Tuple[int, ...]
    dead_letter: bool = False


def deliveries_for(
    dataset: Dataset,
    data: Any,
    msgid: str,
    trace: Sequence[Tuple[str, str]],
    problems: Problems,
    data_json: Optional[bytes] = None,
) -> List[Delivery]:
    """The records a request becomes: its good events, one record or one each (``batch``), and a dead letter
    for each event in ``problems`` (the caller refused the request already when the dataset rejects those).
    ``data_json``: ``data`` as the parse wrote it, reused where a record carries all of ``data``."""
    topic = dataset.entry_topic or ""
    batch = isinstance(data, list)
    events = data if batch else [data]
    good = [index for index in range(len(events)) if index not in problems] if problems else range(len(events))
    deliveries = []
    if good and dataset.batch == "per_event":
        for index in good:
            record = record_for_request(dataset, events[index], msgid, trace)
            deliveries.append(Delivery(record, dataset.sink, topic, (index,)))
    elif good:
        whole = not (batch and problems)
        payload = data if whole else [events[index] for index in good]
        record = record_for_request(dataset, payload, msgid, trace, data_json if whole else None)
        deliveries.append(Delivery(record, dataset.sink, topic, tuple(good)))
    if problems and dataset.dead_letter is not None:
        meta = obsrv_meta(int(time.time() * 1000))
        for index in sorted(problems):
            document = {
                "event": events[index],
                "errors": [describe(problem) for problem in problems[index]],
                "index": index,
                "obsrv_meta": meta,
                "dataset": dataset.id,
                "msgid": msgid,
            }
            key = record_key(document, dataset.key_path) if dataset.key_path else None
            record = Record(encode_document(document), dataset=dataset.id, msgid=msgid, key=key, trace=trace)
            where = dataset.dead_letter
            deliveries.append(Delivery(record, where["sink"], where["entry_topic"], (index,), dead_letter=True))
    return deliveries
