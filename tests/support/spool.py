"""Helpers for the spool tests: its report in /health, waiting for it to drain, checking what a broker got."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, Tuple

from tests.support.data_in import envelope_of


async def fetch(http_client: Any, base_url: str, path: str) -> Tuple[int, Dict[str, Any]]:
    response = await http_client.fetch(base_url + path, raise_error=False)
    return response.code, envelope_of(response)


async def spool_report(http_client: Any, base_url: str, sink: str) -> Dict[str, Any]:
    return (await fetch(http_client, base_url, "/health"))[1]["result"]["sinks"][sink]["spool"]


async def until(check: Callable[[], Awaitable[Any]], timeout: float, interval: float = 0.1) -> Any:
    """Await ``check()`` until it is truthy or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


async def drained(http_client: Any, base_url: str, sink: str, timeout: float = 30) -> Dict[str, Any]:
    """Wait until the sink's spool holds nothing (delivered, and its files gone); its report then."""

    async def empty() -> Optional[Dict[str, Any]]:
        report = await spool_report(http_client, base_url, sink)
        return report if report["records"] == 0 and report["bytes"] == 0 else None

    report = await until(empty, timeout)
    assert report is not None, await spool_report(http_client, base_url, sink)
    return report


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
