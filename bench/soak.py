"""``--soak SECONDS``: load the service on each sink in turn and sample its RSS, for the memory target.

One service per ``--soak-sinks`` entry, single events at ``--connections``
for the whole time, RSS (the service and all its workers) every
``--soak-interval`` seconds; the verdict compares every sample with the first.
"""

from __future__ import annotations

import threading
import time
from typing import Dict, List, Tuple

from bench import wrk
from bench.backends import make_backends
from bench.procs import StartFailed, rss_bytes
from bench.run import Runner, layout


def run_soaks(runner: Runner) -> None:
    for name in runner.args.soak_sinks:
        soak_one(runner, name)


def soak_one(runner: Runner, name: str) -> None:
    args = runner.args
    processes = args.soak_processes
    lay = layout(processes, runner.cpus, args.pin)
    backend = make_backends([name], args.rabbitmq_url, args.kafka_driver)[0]
    why = backend.unavailable()
    if why:
        runner.skip("soak " + backend.name, processes, why)
        return
    print(
        "\n== soak: %s sink, %d process(es), %ss at %d connections; %s"
        % (backend.name, processes, args.soak, args.connections, lay.text)
    )
    try:
        server = runner.start_service(backend, processes, lay)
    except (StartFailed, RuntimeError, OSError) as exc:
        backend.close()
        runner.skip("soak " + backend.name, processes, "the service did not start: %s" % exc)
        return
    assert server.proc is not None
    body = runner.bodies["single"]
    samples: List[Tuple[float, int]] = []
    box: Dict[str, object] = {}
    try:
        wrk.run(runner.wrk_path, server.url, body, args.connections, max(args.warmup, 5), args.threads, lay.load_cpu)

        def load() -> None:
            try:
                box["result"] = wrk.run(
                    runner.wrk_path, server.url, body, args.connections, args.soak, args.threads, lay.load_cpu
                )
            except wrk.WrkFailed as exc:
                box["error"] = str(exc)

        thread = threading.Thread(target=load, daemon=True)
        start = time.monotonic()
        thread.start()
        while thread.is_alive():
            samples.append((time.monotonic() - start, rss_bytes(server.proc.pid)))
            print("  soak %s t=%5.0fs rss %.1f MiB" % (name, samples[-1][0], samples[-1][1] / 2**20), flush=True)
            thread.join(args.soak_interval)
    finally:
        runner.stop_all([server])
    runner.outcome.soaks.append(
        {
            "sink": backend.name,
            "processes": processes,
            "seconds": args.soak,
            "samples": samples,
            "result": box.get("result"),
            "error": box.get("error"),
            "layout": lay.text,
        }
    )
