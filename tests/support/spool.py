"""Helpers for the spool tests: its report in /health, waiting for it to drain, checking what a broker got."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any, Dict, Iterable, Tuple

from tests.support.data_in import envelope_of
from tests.support.load import Figures, post_until


async def fetch(http_client: Any, management_url: str, path: str) -> Tuple[int, Dict[str, Any]]:
    response = await http_client.fetch(management_url + path, raise_error=False)
    return response.code, envelope_of(response)


async def spool_report(http_client: Any, management_url: str, sink: str) -> Dict[str, Any]:
    return (await fetch(http_client, management_url, "/health"))[1]["result"]["sinks"][sink]["spool"]


async def drained(http_client: Any, management_url: str, sink: str, timeout: float = 30) -> Dict[str, Any]:
    """Wait until the sink's spool holds nothing (delivered, and its files gone); its report then."""
    deadline = time.monotonic() + timeout
    report = await spool_report(http_client, management_url, sink)
    while report["records"] or report["bytes"]:
        assert time.monotonic() < deadline, "the spool did not drain: %s" % report
        await asyncio.sleep(0.1)
        report = await spool_report(http_client, management_url, sink)
    return report


async def outage_under_load(
    ingest: Any, http_client: Any, management_url: str, dataset: str, sink: str, cut: Any, restore: Any, away: float = 3
) -> Figures:
    """Load ``dataset`` from 8 clients; cut the broker for ``away`` seconds (the service stays ready and spools
    meanwhile), restore it, load a little longer; what each request was answered."""
    answers, stop = Figures(), asyncio.Event()
    load = asyncio.ensure_future(post_until(ingest, dataset, stop, answers))
    await asyncio.sleep(1.5)
    cut()
    await asyncio.sleep(away)
    code, ready = await fetch(http_client, management_url, "/ready")
    assert code == 200 and ready["result"] == {"status": "ready", "spooling": [sink]}, ready
    health = (await fetch(http_client, management_url, "/health"))[1]["result"]
    assert health["status"] == "degraded" and health["sinks"][sink]["state"] == "down"
    assert health["sinks"][sink]["spool"]["records"] > 0
    restore()
    await asyncio.sleep(3)
    stop.set()
    await load
    return answers


def duplicates(msgids: Iterable[str]) -> Dict[str, int]:
    return {msgid: count for msgid, count in collections.Counter(msgids).items() if count > 1}


def assert_each_client_in_order(msgids: Iterable[str]) -> None:
    """Each load client (``tests.support.load``) sends one record after another: the broker has them in that
    order (a duplicate aside: only its first copy counts)."""
    by_client: Dict[str, list] = collections.defaultdict(list)
    seen = set()
    for msgid in msgids:
        if msgid in seen:
            continue
        seen.add(msgid)
        _, client, number = msgid.rsplit("-", 2)
        by_client[client].append(int(number))
    for client, numbers in by_client.items():
        assert numbers == sorted(numbers), "client %s out of order: %s" % (client, numbers)
