"""``python -m bench --spool``: what the spool costs while the broker is healthy, and how fast it replays.

Happy path: for each broker sink, the service without a spool and the same
service with one (the broker up, so nothing is spooled) are measured in turn
with wrk, the order rotating per round; the figure is spool on / off.

Cost per record, in-process: ``send`` of a sink whose ``publish`` returns at
once, with and without a spool, best of several runs of many sends: what the
spool adds to every record on the happy path, without the noise of HTTP and a
broker.

Replay: a spool is filled with ``REPLAY_RECORDS`` single-event records before
the service starts (written with the spool's own storage engine, as a service
that ran through an outage would have left them); the service then replays them
to the broker, and the rate is records / seconds until ``/health`` shows the
spool empty. ``replay_rate`` is set far above that, so the figure is what the
sink and broker can take; the default cap (10,000 records/s) is beside it.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import urllib.request
import uuid
from typing import Any, Dict, List, Optional

from bench import payloads
from bench.backends import Backend, make_backends
from bench.procs import Processes
from bench.report import md_table, text_table
from bench.run import Layout, Runner, Server, layout
from sinks.base import Record
from sinks.health import Health
from sinks.spool import SPOOL_OPTIONS, SpoolingSink, frames
from sinks.spool.lane import Lane, directory_name

SPOOLED_SINKS = ("kafka", "rabbitmq")
REPLAY_RECORDS = 20_000
UNCAPPED = 10_000_000
HEADER = ["sink", "payload", "off req/s", "off p99 ms", "on req/s", "on p99 ms", "on / off", "rounds"]
SINK_NAME = "bench"  # the service's sink, as bench.run names it


class SpooledBackend(Backend):
    """A broker backend whose sink has a spool, optionally filled with records before the service starts."""

    def __init__(self, inner: Backend, directory: str, replay_rate: Optional[int] = None, prefill: int = 0):
        self.inner, self.directory, self.replay_rate, self.prefill = inner, directory, replay_rate, prefill
        self.name = inner.name + "+spool"
        self.management = True  # the spool's figures are in /health's details, shown there

    @property  # type: ignore[override]
    def topic(self) -> str:
        return self.inner.topic

    def unavailable(self) -> Optional[str]:
        return self.inner.unavailable()

    def config(self, workdir: str, procs: Processes, cpu: Optional[int]) -> Dict[str, Any]:
        sink = self.inner.config(workdir, procs, cpu)
        sink["spool"] = {"directory": self.directory}
        if self.replay_rate is not None:
            sink["spool"]["replay_rate"] = self.replay_rate
        if self.prefill:
            fill(os.path.join(self.directory, directory_name(SINK_NAME)), self.topic, self.prefill)
        return sink

    def clear(self) -> None:
        self.inner.clear()

    def close(self) -> None:
        self.inner.close()


def fill(root: str, destination: str, count: int) -> None:
    """Write ``count`` records for ``destination`` into a spool, as the service spools them."""
    lane = Lane(root, SINK_NAME)
    lane.take()
    try:
        log = lane.log_for(destination)
        now = int(time.time() * 1000)
        for start in range(0, count, 1000):
            log.append([frames.encode(destination, _record(n), now) for n in range(start, min(count, start + 1000))])
    finally:
        lane.close()


def _record(number: int) -> Record:
    msgid = "spooled-%d" % number
    document = {"event": payloads.event(number), "dataset": "bench", "msgid": msgid}
    return Record(json.dumps(document, separators=(",", ":")).encode(), dataset="bench", msgid=msgid)


def _spool_of(server: Server) -> Dict[str, Any]:
    assert server.management is not None, "a spooled backend opens the management listener"
    health = server.management + "/health"
    with urllib.request.urlopen(health, timeout=10) as response:
        return json.loads(response.read())["result"]["sinks"][SINK_NAME]["spool"]


def measure_happy_path(runner: Runner, name: str, lay: Layout) -> List[List[str]]:
    args = runner.args
    off_backend = make_backends([name], args.rabbitmq_url, args.kafka_driver)[0]
    spool_dir = os.path.join(runner.workdir, "spool-%s" % uuid.uuid4().hex[:8])
    on_backend = SpooledBackend(make_backends([name], args.rabbitmq_url, args.kafka_driver)[0], spool_dir)
    servers = [runner.start_service(off_backend, 1, lay), runner.start_service(on_backend, 1, lay)]
    rows = []
    try:
        for payload in args.payloads:
            results: Dict[str, list] = {server.name: [] for server in servers}
            for number in range(args.rounds):
                for server in servers[number % 2 :] + servers[: number % 2]:
                    result = runner.measure(server, payload, args.connections, args.duration, lay)
                    results[server.name].append(result)
                    print(
                        "  spool %-8s %-6s round %d/%d %-14s %8.0f req/s  p99 %7.2f ms  (%d errors / non-2xx)"
                        % (
                            name,
                            payload,
                            number + 1,
                            args.rounds,
                            server.name,
                            result.rps,
                            result.p99_ms,
                            result.errors + result.non2xx,
                        ),
                        flush=True,
                    )
            off = results[off_backend.name]
            on = results[on_backend.name]
            off_rps, on_rps = statistics.median(r.rps for r in off), statistics.median(r.rps for r in on)
            rows.append(
                [
                    name,
                    payload,
                    "%.0f" % off_rps,
                    "%.2f" % statistics.median(r.p99_ms for r in off),
                    "%.0f" % on_rps,
                    "%.2f" % statistics.median(r.p99_ms for r in on),
                    "%.3f" % (on_rps / off_rps if off_rps else 0.0),
                    str(len(on)),
                ]
            )
        spooled = _spool_of(servers[1])["spooled"]
        if spooled:
            print("bench: the broker was slow: %d records were spooled during the happy path" % spooled)
    finally:
        runner.stop_all(servers)
    return rows


def measure_replay(runner: Runner, name: str, lay: Layout) -> List[str]:
    spool_dir = os.path.join(runner.workdir, "spool-replay-%s" % uuid.uuid4().hex[:8])
    inner = make_backends([name], runner.args.rabbitmq_url, runner.args.kafka_driver)[0]
    backend = SpooledBackend(inner, spool_dir, replay_rate=UNCAPPED, prefill=REPLAY_RECORDS)
    server = runner.start_service(backend, 1, lay)
    try:
        started = time.monotonic()
        first = _spool_of(server)
        report = first
        peak = 0.0
        while report["records"]:
            time.sleep(0.1)
            report = _spool_of(server)
            peak = max(peak, report["replay_rate"])
            if time.monotonic() - started > 300:
                raise RuntimeError("the spool did not drain in 300 s: %s" % report)
        elapsed = time.monotonic() - started
    finally:
        runner.stop_all([server])
    replayed = first["records"]
    print("  replay %-8s %d records in %.2f s" % (name, replayed, elapsed), flush=True)
    return [name, str(replayed), "%.2f" % elapsed, "%.0f" % (replayed / elapsed), "%.0f" % peak]


REPLAY_HEADER = ["sink", "records", "seconds", "records/s", "peak replay_rate (10 s window)"]
COST_HEADER = ["spool", "µs per send", "added by the spool"]
COST_SENDS = 100_000


class _InstantSink(SpoolingSink):
    """A broker sink whose broker takes every record at once: all that is left is the path through ``send``."""

    async def publish(self, destination: str, record: Record) -> None:
        return None

    def broker_health(self) -> Health:
        return Health(up=True)


async def _per_send(sink: SpoolingSink, record: Record) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(COST_SENDS):
            await sink.send("bench", record)
        best = min(best, time.perf_counter() - started)
    return best / COST_SENDS * 1e6


def measure_cost(workdir: str) -> List[List[str]]:
    import asyncio

    async def run() -> List[float]:
        options = SPOOL_OPTIONS({"directory": os.path.join(workdir, "spool-cost")})
        off, on = _InstantSink("off", {"spool": None}), _InstantSink("on", {"spool": options})
        await on.start_spool()
        try:
            record = _record(0)
            return [await _per_send(off, record), await _per_send(on, record)]
        finally:
            await on.stop_replay(1)
            await on.close_spool()

    off_us, on_us = asyncio.run(run())
    print("  cost per send: %.2f µs without a spool, %.2f µs with one" % (off_us, on_us), flush=True)
    return [["off", "%.2f" % off_us, "–"], ["on", "%.2f" % on_us, "%+.2f µs" % (on_us - off_us)]]


def run_spool(runner: Runner, sink_names: List[str]) -> str:
    """Measure, print, and return the markdown of both tables."""
    lay = layout(1, runner.cpus, runner.args.pin)
    chosen = [name for name in sink_names if name in SPOOLED_SINKS]
    print("\n== spool: happy path (spool on against off) and replay; %s" % lay.text)
    cost = measure_cost(runner.workdir)
    happy: List[List[str]] = []
    replay: List[List[str]] = []
    for name in chosen:
        happy += measure_happy_path(runner, name, lay)
        replay.append(measure_replay(runner, name, lay))
    print(
        "\n"
        + "\n\n".join(text_table(*pair) for pair in ((cost, COST_HEADER), (happy, HEADER), (replay, REPLAY_HEADER)))
    )
    args = runner.args
    return "\n".join(
        [
            "## Spool",
            "",
            "Cost per record, in-process: `send` of a sink whose broker takes every record at once, best of 5 runs "
            "of %d sends." % COST_SENDS,
            "",
            md_table(cost, COST_HEADER),
            "",
            "Happy path (the broker up, nothing spooled): the same service without and with `spool`, 1 process, "
            "%d connections, median of %d rounds of %.0f s (after %.0f s of warm-up), %s."
            % (args.connections, args.rounds, args.duration, args.warmup, lay.text),
            "",
            md_table(happy, HEADER),
            "",
            "Replay: %d single-event records spooled before the start, delivered with `replay_rate` uncapped "
            "(the default cap is 10,000 records/s); seconds from the first `/health` to an empty spool."
            % REPLAY_RECORDS,
            "",
            md_table(replay, REPLAY_HEADER),
            "",
        ]
    )
