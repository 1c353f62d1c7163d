"""``python -m bench``: measure the service against a bare Tornado handler, print, write RESULTS.md.

python -m bench                 # the full run, ~12 minutes: 3 rounds of 10 s each
python -m bench --quick         # a ~2-minute smoke check of the harness
python -m bench --soak 300      # the full run, then 5 minutes watching the service's RSS
python -m bench --spool --quick # only the spool: happy path with it on against off, and its replay rate
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import shutil
import signal
import sys
import tempfile
from typing import List, Optional

from bench import machine, payloads, report, wrk
from bench.backends import make_backends, safe_url
from bench.procs import Processes
from bench.run import Outcome, Runner

SINKS = ("file", "file-schema", "kafka", "rabbitmq")
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
SPOOL_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "SPOOL.md")
FULL = {"duration": 10.0, "warmup": 2.0, "rounds": 3}
QUICK = {"duration": 2.0, "warmup": 1.0, "rounds": 2}


def _list(kind, choices=None):
    def parse(text: str) -> list:
        values = [kind(part) for part in text.split(",") if part.strip()]
        bad = [v for v in values if choices and v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(
                "expected a comma-separated list of %s" % (", ".join(map(str, choices)) if choices else kind.__name__)
            )
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark tornado-ingest against a bare Tornado handler with wrk."
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke check: %(rounds)d rounds of %(duration).0f s, %(warmup).0f s warm-up (~2 min)" % QUICK,
    )
    p.add_argument("--duration", type=float, help="seconds per measurement (default %.0f)" % FULL["duration"])
    p.add_argument(
        "--warmup", type=float, help="seconds of warm-up before each measurement (default %.0f)" % FULL["warmup"]
    )
    p.add_argument("--rounds", type=int, help="rounds; figures are medians over them (default %d)" % FULL["rounds"])
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32, as the issue's targets)")
    p.add_argument(
        "--upstream-connections",
        type=int,
        default=50,
        help="also measure Kafka, single events, 1 process at this many connections, "
        "as the upstream figures were (default 50; 0: no)",
    )
    p.add_argument(
        "--sinks",
        type=_list(str, SINKS),
        default=list(SINKS),
        help="comma-separated (default file,file-schema,kafka,rabbitmq)",
    )
    p.add_argument("--processes", type=_list(int), default=[1, 2], help="service --processes values (default 1,2)")
    p.add_argument(
        "--payloads", type=_list(str, ("single", "batch")), default=["single", "batch"], help="default single,batch"
    )
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: wrk has one CPU)")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin servers and wrk to CPUs")
    p.add_argument(
        "--service-log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the service's --log-level (default WARNING: access lines for 4xx/5xx only, as a busy "
        "deployment runs; INFO logs a line per request)",
    )
    p.add_argument(
        "--bare-json",
        default="auto",
        choices=["auto", "json", "orjson"],
        help="JSON library of the ceiling (default auto: orjson if installed)",
    )
    p.add_argument(
        "--rabbitmq-url",
        default=os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
        help="broker for the rabbitmq sink (default $RABBITMQ_URL or guest@127.0.0.1:5672)",
    )
    p.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="also load the service this long and sample its RSS (the memory target: 300)",
    )
    p.add_argument("--soak-sink", default="file", choices=SINKS, help="sink for --soak (default file)")
    p.add_argument("--soak-processes", type=int, default=1, help="service processes for --soak (default 1)")
    p.add_argument("--soak-interval", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    p.add_argument("--soak-only", action="store_true", help="with --soak: skip the matrix")
    p.add_argument(
        "--spool",
        action="store_true",
        help="instead of the matrix: the kafka and rabbitmq sinks with their spool on against off (broker up), "
        "and the spool's replay rate; writes bench/SPOOL.md",
    )
    p.add_argument(
        "--output", help="where to write the results (default bench/RESULTS.md; with --spool, bench/SPOOL.md)"
    )
    return p


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1 or args.duration < 1 or args.connections < 1:
        build_parser().error("--rounds, --duration and --connections must be at least 1")
    if args.soak_only and not args.soak:
        build_parser().error("--soak-only needs --soak SECONDS")
    if args.output is None:
        args.output = SPOOL_OUTPUT if args.spool else DEFAULT_OUTPUT
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop every process


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    wrk_path = wrk.find_wrk()
    if wrk_path is None:
        print(wrk.MISSING, file=sys.stderr)
        return 2
    if args.pin and shutil.which("taskset") is None:
        print("bench: taskset not found (util-linux): nothing will be pinned", file=sys.stderr)
        args.pin = False
    signal.signal(signal.SIGTERM, _terminate)
    cpus = machine.usable_cpus()
    outcome = Outcome()
    available = []
    for backend in make_backends(args.sinks, args.rabbitmq_url):
        why = backend.unavailable()
        if why:
            outcome.skipped[backend.name] = why
            print("bench: skipping the %s sink: %s" % (backend.name, why), file=sys.stderr)
        else:
            available.append(backend.name)
    if not args.spool:
        print(plan(args, available))
    workdir = tempfile.mkdtemp(prefix="tornado-ingest-bench-")
    procs = Processes(workdir)
    bodies = payloads.write_bodies(workdir)
    runner = Runner(args, wrk_path, procs, workdir, bodies, cpus, outcome)
    try:
        if args.spool:
            return _spool_only(runner, available, args)
        if not args.soak_only:
            runner.run_matrix(available)
        if args.soak:
            runner.run_soak()
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping every process it started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    summaries = report.summarise(outcome)
    print(report.console(summaries, outcome, args.connections, args.upstream_connections))
    context = {
        "args": args,
        "command": "python -m bench" + ("" if not argv else " " + " ".join(shlex.quote(a) for a in argv)),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine.describe(),
        "libraries": machine.library_versions(),
        "wrk_version": wrk.version(wrk_path),
        "body_sizes": {kind: len(payloads.body(n)) for kind, n in payloads.EVENTS.items()},
        "bare_json": _bare_json(args.bare_json),
        "rabbitmq": safe_url(args.rabbitmq_url),
    }
    with open(args.output, "w") as handle:
        handle.write(report.markdown(summaries, outcome, context))
    print("\nwrote %s" % os.path.relpath(args.output))
    return 0


def _spool_only(runner: Runner, sinks: List[str], args: argparse.Namespace) -> int:
    from bench.spool import run_spool

    text = run_spool(runner, sinks)
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    machine_lines = "\n".join("- %s: %s" % item for item in machine.describe().items())
    with open(args.output, "w") as handle:
        handle.write(
            "# The spool: its cost and its replay rate\n\nWritten by `python -m bench --spool` on %s.\n\n" % date
            + machine_lines
            + "\n\n"
            + text
        )
    print("\nwrote %s" % os.path.relpath(args.output))
    return 0


def plan(args: argparse.Namespace, sinks: List[str]) -> str:
    servers = 1 + len(sinks)
    per = args.warmup + args.duration
    count = 0
    for processes in args.processes:
        count += servers * len(args.payloads) * args.rounds
        if processes == 1 and "kafka" in sinks and args.upstream_connections and "single" in args.payloads:
            count += 2 * args.rounds
    total = count * per + (args.soak or 0)
    return "bench: %d measurements of %.0f s (+%.0f s warm-up)%s: about %.0f minutes" % (
        count,
        args.duration,
        args.warmup,
        " and a %.0f s soak" % args.soak if args.soak else "",
        total / 60 + 0.5,
    )


def _bare_json(choice: str) -> str:
    from bench.bare import codec

    try:
        return codec(choice)[0]
    except ImportError:
        return choice + " (not installed)"
