"""``POST /v2/data/in/{dataset_id}``: check the request, make its records, hand them over, answer."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, NamedTuple

from tornado_ingest.envelope import (
    ACCEPTED,
    INGEST_API_ID,
    SPOOLED_MESSAGE,
    SUCCESS_MESSAGE,
    build_envelope,
)
from tornado_ingest.errors import (
    DatasetNotFound,
    InvalidInput,
    PayloadTooLarge,
    TopicNotFound,
)
from tornado_ingest.handlers.base import BaseHandler
from tornado_ingest.idempotency import REPLAYED_HEADER, Attempt
from tornado_ingest.metrics import UNKNOWN_DATASET
from tornado_ingest.outcomes import hand_over
from tornado_ingest.records import Delivery, deliveries_for
from tornado_ingest.request import (
    check_content_type,
    gunzip,
    is_gzipped,
    parse_body,
    request_msgid,
    validate_request,
)
from tornado_ingest.schemas import Problems, describe, refusal
from tornado_ingest.settings import Dataset
from tornado_ingest.tornado_compat import answer_finished, close_after_answer
from tornado_ingest.tracing import trace_context

log = logging.getLogger(__name__)

DRY_RUN_HEADER = "X-Dry-Run"
DRY_RUN_MESSAGE = "Dry run: every check passed and the request would be ingested; nothing was written"
YES_OR_NO = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class _Read(NamedTuple):
    """A request read: where it goes, its records, and its retry-safety (none of its parsed events)."""

    dataset: Dataset
    msgid: str
    deliveries: List[Delivery]
    problems: Problems
    attempt: Attempt


class IngestHandler(BaseHandler):
    """``POST /v2/data/in/{dataset_id}``: validate, build the record, hand it to the sink."""

    allowed_methods = ("POST",)

    def check_request(self) -> None:
        dataset_id = self.dataset_id = self.path_args[0]
        self.dataset_label = dataset_id if dataset_id in self.context.config.datasets else UNKNOWN_DATASET
        super().check_request()
        self.key_name = self.context.config.keys.authorize(self.request.headers, dataset_id)
        self._limit = self.context.settings.max_body_bytes
        self._chunks: List[bytes] = []
        self._received = 0
        if self.body_length is not None and self.body_length > self._limit:
            raise self._too_large()
        self.context.bodies.expect(self)

    def data_received(self, chunk: bytes) -> None:
        if answer_finished(self):
            return
        self._received += len(chunk)
        if self._received > self._limit:
            # A chunked body has just outgrown the cap: answer now, drop the rest, close after the answer.
            self._chunks = []
            close_after_answer(self.request)
            self.send_error(413, exc_info=(PayloadTooLarge, self._too_large(), None))
            return
        self._chunks.append(chunk)

    async def post(self, dataset_id: str) -> None:
        self.context.bodies.arrived(self)
        if answer_finished(self):
            return
        dataset, msgid, deliveries, problems, attempt = self.read_request(dataset_id)
        receipts = dataset.receipts or self.wants_receipts()
        if self.dry_run():
            self.outcome = "DRY_RUN"
            self.write_envelope(build_envelope(INGEST_API_ID, msgid=msgid, result=dry_run_result(problems)))
            return
        if self.client_gone:
            return  # nobody to answer: the records are not handed over (the client must send them again)
        # A retry-safe dataset: a msgid answered 200 before gets that answer again, and nothing is written.
        async with attempt:
            if attempt.first_resmsgid is not None:
                self.replay(msgid, attempt.first_resmsgid, attempt.first_status)
                return
            reply = await hand_over(self.context, dataset.id, deliveries, problems, receipts)
            envelope = build_envelope(
                INGEST_API_ID, msgid=msgid, result=reply.result, response_code=reply.response_code
            )
            if reply.status in (200, 202):  # every record taken: remembered (a 207 is not)
                attempt.answered(envelope["params"]["resmsgid"], reply.status)
        self.set_status(reply.status)
        for name, value in reply.headers.items():
            self.set_header(name, value)
        self.outcome = reply.response_code
        self.write_envelope(envelope)

    def read_request(self, dataset_id: str) -> "_Read":
        """The body checked and made into records. The parsed events are let go when this returns: a request
        waiting for its broker holds only its records' bytes, so the garbage collector does not walk hundreds
        of event objects per request in flight, again and again, while they wait."""
        headers = self.request.headers
        check_content_type(headers.get("Content-Type"))
        gzipped = is_gzipped(headers.get("Content-Encoding"))
        body = b"".join(self._chunks)
        self._chunks = []
        self.body_bytes = len(body)
        if gzipped:
            body = gunzip(body, self._limit)
        settings = self.context.settings
        parsed = parse_body(body, settings.max_json_depth)
        document = parsed.document
        self.msgid = request_msgid(document)
        request = validate_request(document)
        data, msgid = request["data"], request["params"]["msgid"]
        self.events = len(data) if isinstance(data, list) else 1
        if isinstance(data, list) and len(data) > settings.max_batch_events:
            raise PayloadTooLarge(
                "a batch of %d events is over server.max_batch_events (%d)" % (len(data), settings.max_batch_events)
            )

        dataset = self.context.config.datasets.get(dataset_id)
        if dataset is None:
            raise DatasetNotFound()
        if not dataset.entry_topic:
            raise TopicNotFound()
        schema = dataset.event_schema
        problems = schema.problems(data if isinstance(data, list) else [data]) if schema is not None else {}
        if problems and dataset.on_invalid == "reject":
            raise InvalidInput(refusal(problems, batch=isinstance(data, list)))
        trace = trace_context(self.request_id, self.request.headers)
        data_json = parsed.data_json if request is document else None  # the rules' copy would be the same data
        deliveries = deliveries_for(dataset, data, msgid, trace, problems, data_json)
        return _Read(dataset, msgid, deliveries, problems, self.context.idempotency.attempt(dataset, msgid, data))

    def replay(self, msgid: str, resmsgid: str, status: int) -> None:
        """The first answer again, for a retry of a msgid taken before: nothing is written."""
        self.set_header(REPLAYED_HEADER, "true")
        self.set_status(status)
        result = {"message": SPOOLED_MESSAGE if status == 202 else SUCCESS_MESSAGE}
        code = ACCEPTED if status == 202 else "OK"
        self.outcome = code
        self.write_envelope(
            build_envelope(INGEST_API_ID, msgid=msgid, result=result, response_code=code, resmsgid=resmsgid)
        )

    def dry_run(self) -> bool:
        """``?dry_run=true`` or ``X-Dry-Run: true``: every check, nothing written."""
        dry = False
        for name, asked in (
            ("dry_run", self.get_query_argument("dry_run", None)),
            (DRY_RUN_HEADER, self.request.headers.get(DRY_RUN_HEADER)),
        ):
            if asked is None:
                continue
            if asked.lower() not in YES_OR_NO:
                raise InvalidInput("%s: expected true or false, got %r" % (name, asked[:40]))
            dry = dry or YES_OR_NO[asked.lower()]
        return dry

    def wants_receipts(self) -> bool:
        """``Prefer: return=receipts`` (RFC 7240): this answer says where each record went."""
        prefer = self.request.headers.get_list("Prefer")
        wanted = any("return=receipts" in [part.strip() for part in value.split(";")] for value in prefer)
        if wanted:
            self.set_header("Preference-Applied", "return=receipts")
        return wanted

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge("body is larger than %d bytes (server.max_body_bytes)" % self._limit)


def dry_run_result(problems: Problems) -> Dict[str, Any]:
    result: Dict[str, Any] = {"message": DRY_RUN_MESSAGE}
    if problems:
        result["dead_lettered"] = [
            {"index": index, "errors": [describe(problem) for problem in problems[index]]} for index in sorted(problems)
        ]
    return result
