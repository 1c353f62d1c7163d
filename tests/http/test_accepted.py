"""202 Accepted: a record its sink could only spool (the broker is away) is answered in the one envelope,
and the service stays ready while the sink spools."""

from __future__ import annotations

from typing import Optional

import pytest

from sinks.base import Receipt, Record, SinkUnavailable
from sinks.health import Health
from sinks.memory import MemorySink
from tests.support.data_in import envelope_of, ingest_request


class AwaySink(MemorySink):
    """What a broker sink with a spool does while its broker is away: down, spooling, every record spooled."""

    spooling = True

    async def send(self, destination: str, record: Record) -> Optional[Receipt]:
        await super().send(destination, record)
        return Receipt(spooled=True)

    def health(self) -> Health:
        spool = {"records": len(self.records), "state": "ok" if self.spooling else "full", "refused_full": 2}
        return Health(up=False, error="the broker is away", spooling=self.spooling, details={"spool": spool})


class HalfAwaySink(AwaySink):
    """Spools every other record and refuses the rest (its spool is full for them)."""

    async def send(self, destination: str, record: Record) -> Optional[Receipt]:
        if len(self.records) % 2:
            self.records.append(("refused", record))
            raise SinkUnavailable("the spool is full")
        return await super().send(destination, record)


@pytest.fixture
def config_document(config_document):
    config_document["sinks"]["bus"] = {"type": "tests.http.test_accepted:AwaySink"}
    config_document["sinks"]["half"] = {"type": "tests.http.test_accepted:HalfAwaySink"}
    config_document["datasets"].update(
        spooled={"sink": "bus", "entry_topic": "spooled.raw"},
        each={"sink": "bus", "entry_topic": "each.raw", "batch": "per_event"},
        halves={"sink": "half", "entry_topic": "halves.raw", "batch": "per_event"},
        retried={"sink": "bus", "entry_topic": "retried.raw", "idempotency": {}},
    )
    return config_document


@pytest.mark.gen_test
async def test_a_spooled_record_is_202_accepted(ingest, app):
    response = await ingest("spooled", ingest_request(msgid="kept-for-later"))
    assert response.code == 202, response.body
    envelope = envelope_of(response)
    assert (envelope["id"], envelope["ver"], envelope["responseCode"]) == ("api.data.in", "v2", "ACCEPTED")
    assert envelope["params"]["status"] == "SUCCESS" and envelope["params"]["msgid"] == "kept-for-later"
    assert "error" not in envelope
    assert "spooled" in envelope["result"]["message"] and "will be delivered" in envelope["result"]["message"]
    assert set(envelope["result"]) == {"message"}
    assert [destination for destination, _ in app.sinks["bus"].records] == ["spooled.raw"]


@pytest.mark.gen_test
async def test_a_record_its_sink_has_is_still_200_ok(ingest):
    response = await ingest("events", ingest_request(msgid="straight"))
    assert response.code == 200
    envelope = envelope_of(response)
    assert (envelope["responseCode"], envelope["params"]["status"]) == ("OK", "SUCCESS")
    assert envelope["result"] == {"message": "Data ingested successfully"}


@pytest.mark.gen_test
async def test_ready_stays_200_while_a_sink_spools_and_says_so(http_client, base_url, health):
    response = await http_client.fetch(base_url + "/ready")
    assert envelope_of(response)["result"] == {"status": "ready", "spooling": ["bus", "half"]}
    health = await health()
    assert health["status"] == "degraded"
    assert health["sinks"]["bus"]["state"] == "down" and health["sinks"]["bus"]["spool"]["state"] == "ok"


@pytest.mark.gen_test
async def test_ready_is_503_once_the_spool_takes_nothing_either(http_client, base_url, app):
    app.sinks["bus"].spooling = False
    response = await http_client.fetch(base_url + "/ready", raise_error=False)
    assert response.code == 503
    assert envelope_of(response)["error"]["message"] == "sinks down: bus"


@pytest.mark.gen_test
async def test_a_batch_whose_records_are_all_spooled_is_202_with_receipts_saying_so(ingest):
    headers = {"Content-Type": "application/json", "Prefer": "return=receipts"}
    response = await ingest("each", ingest_request([{"n": 0}, {"n": 1}]), headers=headers)
    assert response.code == 202, response.body
    result = envelope_of(response)["result"]
    assert "spooled" in result["message"]
    assert [(r["events"], r["spooled"]) for r in result["receipts"]] == [([0], True), ([1], True)]


@pytest.mark.gen_test
async def test_in_a_207_a_spooled_event_is_202_and_counts_as_taken(ingest):
    response = await ingest("halves", ingest_request([{"n": 0}, {"n": 1}]))
    assert response.code == 207, response.body
    result = envelope_of(response)["result"]
    assert [(e["index"], e["status"], e["code"]) for e in result["events"]] == [
        (0, 202, "ACCEPTED"),
        (1, 503, "SINK_UNAVAILABLE"),
    ]
    assert result["message"].startswith("1 of 2 events taken")


@pytest.mark.gen_test
async def test_a_retry_of_a_spooled_request_is_202_again_and_not_spooled_twice(ingest, app):
    request = ingest_request(msgid="spooled-once")
    first = await ingest("retried", request)
    again = await ingest("retried", request)
    assert (first.code, again.code) == (202, 202) and again.headers["Idempotent-Replayed"] == "true"
    assert envelope_of(again)["responseCode"] == "ACCEPTED"
    assert envelope_of(again)["params"]["resmsgid"] == envelope_of(first)["params"]["resmsgid"]
    assert [d for d, _ in app.sinks["bus"].records] == ["retried.raw"]


@pytest.mark.gen_test
async def test_the_spool_figures_are_metrics(ingest, http_client, management_url):
    from prometheus_client.parser import text_string_to_metric_families

    for n in range(3):
        assert (await ingest("spooled", ingest_request(msgid="m-%d" % n))).code == 202
    text = (await http_client.fetch(management_url + "/metrics")).body.decode()
    found = {
        (sample.name, sample.labels.get("sink")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert found[("tornado_ingest_spool_records", "bus")] == 3
    assert found[("tornado_ingest_spool_refused_full_total", "bus")] == 2
    assert ("tornado_ingest_spool_records", "mem") not in found  # no spool, no series
