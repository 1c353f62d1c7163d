"""202 Accepted: a record its sink could only spool (the broker is away) is answered in the one envelope,
and the service stays ready while the sink spools."""

from __future__ import annotations

from typing import Optional

import pytest

from sinks.base import Receipt, Record
from sinks.health import Health
from sinks.memory import MemorySink
from tests.support.data_in import envelope_of, ingest_request


class SpoolingSink(MemorySink):
    """What a broker sink with a spool does while its broker is away: down, spooling, every record spooled."""

    spooling = True

    async def send(self, destination: str, record: Record) -> Optional[Receipt]:
        await super().send(destination, record)
        return Receipt(spooled=True)

    def health(self) -> Health:
        spool = {"records": len(self.records), "state": "ok" if self.spooling else "full"}
        return Health(up=False, error="the broker is away", spooling=self.spooling, details={"spool": spool})


@pytest.fixture
def config_document(config_document):
    config_document["sinks"]["bus"] = {"type": "tests.http.test_accepted:SpoolingSink"}
    config_document["datasets"]["spooled"] = {"sink": "bus", "entry_topic": "spooled.raw"}
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
async def test_ready_stays_200_while_a_sink_spools_and_says_so(http_client, base_url):
    response = await http_client.fetch(base_url + "/ready")
    assert envelope_of(response)["result"] == {"status": "ready", "spooling": ["bus"]}
    health = envelope_of(await http_client.fetch(base_url + "/health"))["result"]
    assert health["status"] == "degraded"
    assert health["sinks"]["bus"]["state"] == "down" and health["sinks"]["bus"]["spool"]["state"] == "ok"


@pytest.mark.gen_test
async def test_ready_is_503_once_the_spool_takes_nothing_either(http_client, base_url, app):
    app.sinks["bus"].spooling = False
    response = await http_client.fetch(base_url + "/ready", raise_error=False)
    assert response.code == 503
    assert envelope_of(response)["error"]["message"] == "sinks down: bus"
