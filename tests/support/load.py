"""Load for the failover and outage tests: clients posting data-in requests, every answer recorded with when it came.

``post_for`` and ``post_until`` run on the test's loop (for tests that serve
the app in process); ``ThreadedLoad`` runs in threads with keep-alive
connections (for a service or a load balancer in another process).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, NamedTuple, Optional

from tornado.httpclient import AsyncHTTPClient

from tests.support.data_in import JSON_HEADERS, body_of, ingest_request

EVENT = {"eid": "INTERACT", "did": "device-1", "ets": 1668591949682}
ACKNOWLEDGED = (200, 202)  # with the broker, or spooled on the gateway's disk


class Outcome(NamedTuple):
    at: float  # seconds since the load started, when the answer came
    msgid: str
    status: int  # 0: no answer (connection refused, reset or timed out)


@dataclass
class Figures:
    """What a load run adds up to."""

    outcomes: List[Outcome] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, msgid: str, status: int) -> None:
        with self._lock:
            self.outcomes.append(Outcome(time.monotonic() - self.started, msgid, status))

    @property
    def status(self) -> Dict[str, int]:
        """msgid -> the status it was answered (the last, should a msgid be sent twice)."""
        with self._lock:
            return {outcome.msgid: outcome.status for outcome in self.outcomes}

    def with_status(self, *codes: int) -> List[str]:
        return [msgid for msgid, status in self.status.items() if status in codes]

    def count(self, code: int) -> int:
        return len(self.with_status(code))

    def statuses(self) -> Dict[int, int]:
        """status -> how many requests were answered it."""
        counts: Dict[int, int] = {}
        for status in self.status.values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    @property
    def acknowledged(self) -> List[str]:
        return [outcome.msgid for outcome in self.outcomes if outcome.status in ACKNOWLEDGED]

    @property
    def failed(self) -> List[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status not in ACKNOWLEDGED]

    def summary(self, stored: Optional[List[str]] = None) -> str:
        text = "%d requests, %d answered 2xx, %d other" % (
            len(self.outcomes),
            len(self.acknowledged),
            len(self.failed),
        )
        if stored is not None:
            text += ", %d lost (2xx not in the sink)" % len(set(self.acknowledged) - set(stored))
        return text


async def post_for(
    base_url: str,
    dataset: str,
    seconds: float,
    clients: int,
    prefix: str,
    data: Optional[Callable[[str], Dict[str, Any]]] = None,
) -> Figures:
    """``clients`` concurrent clients posting to ``dataset`` for ``seconds``, each msgid new (``data(msgid)``)."""
    client = AsyncHTTPClient(force_instance=True, max_clients=clients)
    figures = Figures()
    started = figures.started

    async def one_client(number: int) -> None:
        sent = 0
        while time.monotonic() - started < seconds:
            msgid = "%s%d-%d" % (prefix, number, sent)
            sent += 1
            response = await client.fetch(
                base_url + "/v2/data/in/" + dataset,
                method="POST",
                headers=JSON_HEADERS,
                body=body_of(ingest_request(data=data(msgid) if data else None, msgid=msgid)),
                raise_error=False,
                request_timeout=30,
            )
            figures.record(msgid, response.code)

    try:
        await asyncio.gather(*(one_client(number) for number in range(clients)))
    finally:
        client.close()
    return figures


async def post_until(
    send: Callable[[str, Dict[str, Any]], Awaitable[Any]],
    dataset: str,
    stop: asyncio.Event,
    figures: Figures,
    clients: int = 8,
    prefix: str = "load",
) -> None:
    """``clients`` coroutines post records (``EVENT`` numbered ``n``) to ``dataset`` one after another until
    ``stop`` is set; ``send(dataset, body)`` is the ``ingest`` fixture."""

    async def client(number: int) -> None:
        sent = 0
        while not stop.is_set():
            msgid = "%s-%d-%d" % (prefix, number, sent)
            sent += 1
            response = await send(dataset, ingest_request(data=dict(EVENT, n=sent), msgid=msgid))
            figures.record(msgid, response.code)

    await asyncio.gather(*(client(number) for number in range(clients)))


class ThreadedLoad:
    """``clients`` threads posting to ``http://host:port/v2/data/in/<dataset>`` until ``stop``; keep-alive."""

    def __init__(
        self, port: int, dataset: str, clients: int = 8, prefix: str = "load-", host: str = "127.0.0.1"
    ) -> None:
        self.port, self.host, self.dataset, self.prefix = port, host, dataset, prefix
        self.figures = Figures()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def start(self) -> "ThreadedLoad":
        self.figures.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> Figures:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return self.figures

    def count(self) -> int:
        return len(self.figures.outcomes)

    def _client(self, number: int) -> None:
        connection: Optional[http.client.HTTPConnection] = None
        sent = 0
        while not self._stop.is_set():
            msgid = "%s%d-%d" % (self.prefix, number, sent)
            sent += 1
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                connection.request(
                    "POST",
                    "/v2/data/in/" + self.dataset,
                    json.dumps(ingest_request(data=dict(EVENT, n=sent), msgid=msgid)),
                    {"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
                connection = None
            self.figures.record(msgid, status)
        if connection is not None:
            connection.close()
