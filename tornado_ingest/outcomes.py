"""The answer to a request's records: all taken (200, or 202 when some are only spooled), none (the one error),
or some (207).

A ``per_event`` batch, or a batch whose bad events go to dead letters, is
several records, handed to their sinks together. When every record is
acknowledged the answer is 200; when every record is taken but some only by a
sink's spool (durable on the gateway's disk, delivered when the broker is back),
202; when none is, and all for the same reason, it is that reason's answer
(nothing was written). Otherwise it is 207 Multi-Status with the outcome of each
event: never a 200 that hides a failure, never a 503 that hides a success. A
client sends again the events whose ``status`` is not 200 or 202 (after
``Retry-After`` for a 429 or a 503).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from sinks.base import Receipt
from tornado_ingest.context import Context
from tornado_ingest.delivery import RecordRouter
from tornado_ingest.envelope import ACCEPTED, MULTI_STATUS, SPOOLED_MESSAGE, SUCCESS_MESSAGE
from tornado_ingest.errors import IngestError, InternalError
from tornado_ingest.records import Delivery
from tornado_ingest.schemas import Problems, describe

log = logging.getLogger(__name__)

RETRYABLE = (429, 503)


class Outcome(NamedTuple):
    delivery: Delivery
    receipt: Optional[Receipt] = None
    error: Optional[IngestError] = None


class Answer(NamedTuple):
    status: int
    result: Optional[Dict[str, Any]]  # None: the plain success result
    headers: Dict[str, str]
    response_code: str = "OK"  # ACCEPTED with a 202, MULTI_STATUS with a 207


def taken(receipts: Sequence[Optional[Receipt]], result: Dict[str, Any]) -> Answer:
    """Every record taken: 200, or 202 when a sink could only spool one."""
    if any(receipt is not None and receipt.spooled for receipt in receipts):
        return Answer(202, dict(result, message=SPOOLED_MESSAGE), {}, ACCEPTED)
    return Answer(200, result, {})


async def hand_over(
    context: Context, dataset_id: str, deliveries: Sequence[Delivery], problems: Problems, receipts: bool
) -> Answer:
    """Hand a request's records to their sinks and say what the client is answered (raises the one error)."""
    metrics = context.metrics
    if len(deliveries) == 1 and not problems:  # one record: the plain path, its error is the answer
        delivery = deliveries[0]
        receipt = await context.router.deliver_to(delivery.sink, delivery.topic, delivery.record)
        metrics.accepted(dataset_id, delivery.sink, len(delivery.events), len(delivery.record.value))
        result: Dict[str, Any] = {"message": SUCCESS_MESSAGE}
        if receipts:
            result["receipts"] = [receipt_of(Outcome(delivery, receipt))]
        return taken([receipt], result)
    outcomes = await deliver_all(context.router, deliveries)
    for outcome in outcomes:
        if outcome.error is None:
            delivered = outcome.delivery
            metrics.accepted(dataset_id, delivered.sink, len(delivered.events), len(delivered.record.value))
    return answer(outcomes, problems, receipts)


async def deliver_all(router: RecordRouter, deliveries: Sequence[Delivery]) -> List[Outcome]:
    """Every record to its sink at once, each sink's admitted together; the outcome of each (a failure is an
    outcome, not an exception)."""
    by_sink: Dict[str, List[int]] = {}
    for position, delivery in enumerate(deliveries):
        by_sink.setdefault(delivery.sink, []).append(position)
    results: List[Any] = [None] * len(deliveries)
    sending: List[Tuple[int, Awaitable[Optional[Receipt]]]] = []
    for sink, positions in by_sink.items():
        try:
            sends = router.deliver_together(sink, [(deliveries[p].topic, deliveries[p].record) for p in positions])
        except IngestError as refused:  # the sink is at max_inflight: none of its records is handed over
            for position in positions:
                results[position] = refused
            continue
        sending.extend(zip(positions, sends))
    settled = await asyncio.gather(*(send for _, send in sending), return_exceptions=True)
    for (position, _), result in zip(sending, settled):
        results[position] = result
    outcomes = []
    for delivery, result in zip(deliveries, results):
        if isinstance(result, IngestError):
            outcomes.append(Outcome(delivery, error=result))
        elif isinstance(result, BaseException):
            log.error("record to sink %r failed unexpectedly", delivery.sink, exc_info=result)
            outcomes.append(Outcome(delivery, error=InternalError()))
        else:
            outcomes.append(Outcome(delivery, receipt=result))
    return outcomes


def answer(outcomes: Sequence[Outcome], problems: Problems, receipts: bool) -> Answer:
    """The answer for these outcomes (raises the one error when every record failed for one reason)."""
    failures = [outcome.error for outcome in outcomes if outcome.error is not None]
    if failures and len(failures) == len(outcomes) and len({error.status_code for error in failures}) == 1:
        raise failures[0]
    if not failures:
        result: Dict[str, Any] = {"message": SUCCESS_MESSAGE}
        if problems:
            result["dead_lettered"] = [
                {"index": index, "errors": [describe(problem) for problem in problems[index]]}
                for index in sorted(problems)
            ]
        if receipts:
            result["receipts"] = [receipt_of(outcome) for outcome in outcomes]
        return taken([outcome.receipt for outcome in outcomes], result)
    return _partial(outcomes, problems, receipts)


def _partial(outcomes: Sequence[Outcome], problems: Problems, receipts: bool) -> Answer:
    events: List[Tuple[int, Dict[str, Any]]] = []
    for outcome in outcomes:
        for index in outcome.delivery.events:
            entry: Dict[str, Any] = {"index": index}
            if outcome.error is not None:
                entry.update(status=outcome.error.status_code, code=outcome.error.code, message=outcome.error.message)
            elif outcome.receipt is not None and outcome.receipt.spooled:
                entry.update(status=202, code=ACCEPTED)
            else:
                entry.update(status=200, code="DEAD_LETTERED" if outcome.delivery.dead_letter else "OK")
                if receipts:
                    entry["receipt"] = receipt_of(outcome)
            if index in problems:
                entry["errors"] = [describe(problem) for problem in problems[index]]
            events.append((index, entry))
    count = sum(1 for _, entry in events if entry["status"] in (200, 202))
    message = "%d of %d events taken; send the others again (those whose status is not 200 or 202)" % (
        count,
        len(events),
    )
    retry = [o.error.headers for o in outcomes if o.error is not None and o.error.status_code in RETRYABLE]
    result = {"message": message, "events": [entry for _, entry in sorted(events, key=lambda pair: pair[0])]}
    return Answer(207, result, dict(retry[0]) if retry else {}, MULTI_STATUS)


def receipt_of(outcome: Outcome) -> Dict[str, Any]:
    """Where a record went: the sink, the events it carries, and what the sink says (topic, offset, ...)."""
    receipt = outcome.receipt
    entry: Dict[str, Any] = {"events": list(outcome.delivery.events), "sink": outcome.delivery.sink}
    if outcome.delivery.dead_letter:
        entry["dead_letter"] = True
    if receipt is not None:
        entry.update(receipt.where)
        if receipt.spooled:
            entry["spooled"] = True
    return entry
