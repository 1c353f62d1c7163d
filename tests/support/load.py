"""Steady load for the outage tests: clients posting one record after another, and what each was answered."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from typing import Any, Awaitable, Callable, Dict, List

from tests.support.data_in import ingest_request

EVENT = {"eid": "INTERACT", "did": "device-1", "ets": 1668591949682}


class Answers:
    """msgid -> HTTP status (0: no answer, the connection failed), for every request sent."""

    def __init__(self) -> None:
        self.status: Dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, msgid: str, status: int) -> None:
        with self._lock:
            self.status[msgid] = status

    def with_status(self, *codes: int) -> List[str]:
        with self._lock:
            return [msgid for msgid, status in self.status.items() if status in codes]

    def count(self, code: int) -> int:
        return len(self.with_status(code))

    def summary(self) -> Dict[int, int]:
        counts: Dict[int, int] = {}
        with self._lock:
            for status in self.status.values():
                counts[status] = counts.get(status, 0) + 1
        return counts


async def post_until(
    send: Callable[[str, Dict[str, Any]], Awaitable[Any]],
    dataset: str,
    stop: asyncio.Event,
    answers: Answers,
    clients: int = 8,
    prefix: str = "load",
) -> None:
    """``clients`` coroutines post records to ``dataset`` one after another until ``stop`` is set."""

    async def client(number: int) -> None:
        sent = 0
        while not stop.is_set():
            msgid = "%s-%d-%d" % (prefix, number, sent)
            sent += 1
            response = await send(dataset, ingest_request(data=dict(EVENT, n=sent), msgid=msgid))
            answers.record(msgid, response.code)

    await asyncio.gather(*(client(number) for number in range(clients)))


class ThreadedLoad:
    """The same against a service in another process, from threads (one connection each)."""

    def __init__(self, port: int, dataset: str, clients: int = 8, prefix: str = "load") -> None:
        self.port, self.dataset, self.prefix = port, dataset, prefix
        self.answers = Answers()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def start(self) -> "ThreadedLoad":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> Answers:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return self.answers

    def _client(self, number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = 0
        while not self._stop.is_set():
            msgid = "%s-%d-%d" % (self.prefix, number, sent)
            sent += 1
            body = json.dumps(ingest_request(data=dict(EVENT, n=sent), msgid=msgid))
            try:
                connection.request("POST", "/v2/data/in/" + self.dataset, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                self.answers.record(msgid, response.status)
            except (OSError, http.client.HTTPException):
                self.answers.record(msgid, 0)  # cut off (the service was killed): never acknowledged
                connection.close()
                if self._stop.wait(0.05):
                    return
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.close()
