"""The measurements: start the ceiling and the service (one per sink), alternate wrk over them.

For each ``--processes`` value, a bare server and one service per sink run
side by side; each round measures every one of them in turn (the order
rotates per round, so slow drift hurts no one more than another), each after a
short warm-up. With two or more CPUs and one process, servers are pinned to one
CPU and wrk (and the mock Kafka broker) to another; with several processes
nothing is pinned, since the workers need the CPUs that wrk also needs.

Not every server is in every group (``members``): the feature variants and the
uvloop pair run at one process and the main connection count, the schema only on
batches; the wide group (``--upstream-connections``) has the ceiling, file,
Kafka and the target; several processes have the ceiling, file, Kafka and
RabbitMQ. That keeps the full run near 20 minutes on two cores.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from bench import target, wrk
from bench.backends import Backend, make_backends
from bench.loops import PLAIN, UVLOOP, LoopSupport
from bench.procs import Proc, Processes, StartFailed, free_port, wait_ready

BARE = "bare"
BARE_UVLOOP = "bare-uvloop"
ONLY_SINGLE = (BARE_UVLOOP, "file-uvloop")
ONLY_BATCH = ("file-schema",)
WIDE = (BARE, "file", "kafka", target.NAME)  # the group at --upstream-connections
SEVERAL = (BARE, "file", "kafka", "rabbitmq")  # the servers at --processes 2 and up
Key = Tuple[int, str, int, str]  # processes, payload, connections, server


@dataclass
class Layout:
    server_cpu: Optional[int]
    load_cpu: Optional[int]
    text: str


def layout(processes: int, cpus: List[int], pin: bool) -> Layout:
    if pin and processes == 1 and len(cpus) >= 2:
        return Layout(
            cpus[0], cpus[1], "servers pinned to CPU %d; wrk and the mock Kafka broker to CPU %d" % (cpus[0], cpus[1])
        )
    why = "--no-pin" if not pin else ("one CPU" if len(cpus) < 2 else "%d workers need the CPUs too" % processes)
    return Layout(None, None, "nothing pinned (%s): servers, wrk and brokers share %d CPUs" % (why, len(cpus)))


@dataclass
class Server:
    name: str
    proc: Optional[Proc]  # None: the --target, which the bench did not start
    url: str
    backend: Optional[Backend] = None
    headers: Tuple[str, ...] = ()
    management: Optional[str] = None  # the management listener's base URL, when the backend asked for one

    def alive(self) -> bool:
        return self.proc is None or self.proc.alive()


@dataclass
class Outcome:
    results: Dict[Key, List[wrk.Result]] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)  # "kafka (2 processes)" -> why
    layouts: Dict[int, str] = field(default_factory=dict)
    soaks: List[dict] = field(default_factory=list)  # one per --soak-sinks entry that ran
    notes: List[str] = field(default_factory=list)  # what the reader must know about this run


class Runner:
    def __init__(
        self,
        args,
        wrk_path: str,
        procs: Processes,
        workdir: str,
        bodies: Dict[str, str],
        cpus: List[int],
        outcome: Outcome,
        loops: LoopSupport,
        target_server: Optional[Server] = None,
    ):
        self.args, self.wrk_path, self.procs = args, wrk_path, procs
        self.workdir, self.bodies, self.cpus, self.outcome = workdir, bodies, cpus, outcome
        self.loops, self.target = loops, target_server

    # -- servers --------------------------------------------------------------

    def start_bare(self, processes: int, cpu: Optional[int], loop: str = PLAIN) -> Server:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "bench.bare",
            "--port",
            str(port),
            "--processes",
            str(processes),
            "--json",
            self.args.bare_json,
            "--event-loop",
            loop,
        ]
        name = BARE if loop == PLAIN else BARE_UVLOOP
        proc = self.procs.start("%s-p%d" % (name, processes), argv, cpu=cpu)
        base = "http://127.0.0.1:%d" % port
        wait_ready(proc, base + "/ready")
        return Server(name, proc, base + "/v2/data/in/bench")

    def start_service(self, backend: Backend, processes: int, lay: Layout) -> Server:
        sink = backend.config(self.workdir, self.procs, lay.load_cpu)
        server: Dict[str, object] = {"address": "127.0.0.1"}
        if backend.management:
            server["management_port"] = free_port()
        config = {
            "server": server,
            "sinks": {"bench": sink},
            "datasets": {"bench": {"sink": "bench", "entry_topic": backend.topic, **backend.dataset}},
        }
        path = os.path.join(self.workdir, "%s-p%d.yaml" % (backend.name, processes))
        with open(path, "w") as handle:
            json.dump(config, handle, indent=2)  # JSON is YAML
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "tornado_ingest",
            "--config",
            path,
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
            "--processes",
            str(processes),
            "--log-level",
            self.args.service_log_level,
            *self.loops.service_args(backend.event_loop),
        ]
        proc = self.procs.start("service-%s-p%d" % (backend.name, processes), argv, cpu=lay.server_cpu)
        base = "http://127.0.0.1:%d" % port
        wait_ready(proc, base + "/ready", timeout=45)
        management = "http://127.0.0.1:%s" % server["management_port"] if backend.management else None
        return Server(backend.name, proc, base + "/v2/data/in/bench", backend, management=management)

    def start_all(self, processes: int, lay: Layout, sink_names: List[str]) -> List[Server]:
        if processes > 1:
            sink_names = [name for name in sink_names if name in SEVERAL]
        servers = [self.start_bare(processes, lay.server_cpu)]
        if "file-uvloop" in sink_names:
            servers.append(self.start_bare(processes, lay.server_cpu, UVLOOP))
        for backend in make_backends(sink_names, self.args.rabbitmq_url, self.args.kafka_driver):
            try:
                servers.append(self.start_service(backend, processes, lay))
            except (StartFailed, RuntimeError, OSError) as exc:
                backend.close()
                self.skip(backend.name, processes, "the service did not start: %s" % exc)
        return servers

    def stop_all(self, servers: List[Server]) -> None:
        for server in servers:
            if server.proc is not None:
                self.procs.stop(server.proc)
            if server.backend is not None:
                server.backend.close()

    def skip(self, name: str, processes: int, why: str) -> None:
        label = "%s (%d process%s)" % (name, processes, "es" if processes > 1 else "")
        self.outcome.skipped[label] = why
        print("bench: skipping %s: %s" % (label, why.splitlines()[0]), file=sys.stderr)

    # -- measurements ---------------------------------------------------------

    def measure(self, server: Server, payload: str, connections: int, seconds: float, lay: Layout) -> wrk.Result:
        body, threads, cpu = self.bodies[payload], self.args.threads, lay.load_cpu
        if self.args.warmup > 0:
            wrk.run(self.wrk_path, server.url, body, connections, self.args.warmup, threads, cpu, server.headers)
        result = wrk.run(self.wrk_path, server.url, body, connections, seconds, threads, cpu, server.headers)
        if server.backend is not None:
            server.backend.clear()
        return result

    def groups(self, processes: int, servers: List[Server]) -> List[Tuple[str, int, List[Server]]]:
        """(payload, connections, members) to measure at this many processes."""
        found = []
        for payload in self.args.payloads:
            skip = ONLY_BATCH if payload == "single" else ONLY_SINGLE
            found.append((payload, self.args.connections, [s for s in servers if s.name not in skip]))
        wide = self.args.upstream_connections
        if processes == 1 and wide and wide != self.args.connections:
            members = [s for s in servers if s.name in WIDE]
            if len(members) > 1:
                found += [(payload, wide, members) for payload in self.args.payloads]
        return found

    def run_matrix(self, sink_names: List[str]) -> None:
        for processes in self.args.processes:
            lay = layout(processes, self.cpus, self.args.pin)
            self.outcome.layouts[processes] = lay.text
            print("\n== %d process%s: %s" % (processes, "es" if processes > 1 else "", lay.text))
            servers = self.start_all(processes, lay, sink_names)
            if processes == 1 and self.target is not None:
                servers.append(self.target)
            try:
                for payload, connections, members in self.groups(processes, servers):
                    self.run_group(processes, payload, connections, members, lay)
            finally:
                self.stop_all(servers)

    def run_group(self, processes: int, payload: str, connections: int, members: List[Server], lay: Layout) -> None:
        live = list(members)
        for number in range(self.args.rounds):
            shift = number % len(live) if live else 0
            for server in live[shift:] + live[:shift]:
                if not server.alive():
                    continue
                label = "p%d %-6s c%-3d round %d/%d %-16s" % (
                    processes,
                    payload,
                    connections,
                    number + 1,
                    self.args.rounds,
                    server.name,
                )
                try:
                    result = self.measure(server, payload, connections, self.args.duration, lay)
                except wrk.WrkFailed as exc:
                    print("  %s wrk failed: %s" % (label, exc), file=sys.stderr)
                    continue
                self.outcome.results.setdefault((processes, payload, connections, server.name), []).append(result)
                bad = result.errors + result.non2xx
                print(
                    "  %s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms%s"
                    % (label, result.rps, result.p50_ms, result.p99_ms, "  (%d errors / non-2xx)" % bad if bad else ""),
                    flush=True,
                )
                if server.proc is not None and not server.proc.alive():
                    self.skip(server.name, processes, "the service died during the run:\n%s" % server.proc.log_tail())
