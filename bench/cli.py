"""``python -m bench``: measure the service against a bare Tornado handler, print, write RESULTS.md.

python -m bench                 # the full run, under 20 minutes: 3 rounds of 10 s each
python -m bench --quick         # a few-minute smoke check of the harness
python -m bench --soak 300      # the full run, then 5 minutes per sink watching the service's RSS
python -m bench --target URL    # also drive another endpoint of this API, beside the service
python -m bench --kafka-driver confluent   # the Kafka sink on its confluent-kafka driver
python -m bench --spool --quick # only the spool: happy path with it on against off, and its replay rate
python -m bench.count           # not timed: the bytecodes one request costs, by module (see bench/count.py)
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

from bench import loops, machine, payloads, report, target, wrk
from bench.backends import KAFKA_DRIVERS, SINKS, make_backends, safe_url
from bench.procs import Processes
from bench.run import ONLY_BATCH, ONLY_SINGLE, SEVERAL, WIDE, Outcome, Runner, Server
from bench.summary import summarise

SOAK_SINKS = ("file", "kafka", "rabbitmq")
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
        help="smoke check: %(rounds)d rounds of %(duration).0f s, %(warmup).0f s warm-up (~4 min)" % QUICK,
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
        help="also measure the ceiling, file, Kafka and the target at 1 process at this many connections, "
        "as the upstream figures were (default 50; 0: no)",
    )
    p.add_argument(
        "--sinks",
        type=_list(str, SINKS),
        default=list(SINKS),
        help="comma-separated servers besides the ceiling (default %s)" % ",".join(SINKS),
    )
    p.add_argument(
        "--kafka-driver",
        default="kafka-python",
        choices=KAFKA_DRIVERS,
        help="the Kafka sink's driver option (default kafka-python; confluent needs confluent-kafka)",
    )
    p.add_argument(
        "--target",
        metavar="URL",
        help="also drive this running endpoint (POST URL/v2/data/in/DATASET) with the same bodies, "
        "beside the service at 1 process; answers >= 400 count as errors",
    )
    p.add_argument("--target-dataset", default="bench", help="dataset id on --target (default bench)")
    p.add_argument(
        "--target-header",
        action="append",
        default=[],
        type=_header,
        metavar="'NAME: VALUE'",
        help="a header for every request to --target (repeatable), e.g. an API key",
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
    p.add_argument(
        "--soak-sinks",
        type=_list(str, SOAK_SINKS),
        default=list(SOAK_SINKS),
        help="sinks for --soak, one after the other (default file,kafka,rabbitmq)",
    )
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


def _header(text: str) -> str:
    try:
        return target.parse_header(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    support = loops.detect()
    available = _available(args, support, outcome)
    workdir = tempfile.mkdtemp(prefix="tornado-ingest-bench-")
    procs = Processes(workdir)
    bodies = payloads.write_bodies(workdir)
    target_server = _target(args, bodies, outcome)
    if not args.spool:
        print(plan(args, available, target_server is not None))
    runner = Runner(args, wrk_path, procs, workdir, bodies, cpus, outcome, support, target_server)
    try:
        if args.spool:
            return _spool_only(runner, available, args)
        if not args.soak_only:
            runner.run_matrix(available)
        if args.soak:
            from bench.soak import run_soaks

            run_soaks(runner)
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping every process it started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    summaries = summarise(outcome)
    bare_json = _bare_json(args.bare_json)
    print(report.console(summaries, outcome, args, bare_json))
    context = {
        "args": args,
        "command": "python -m bench" + ("" if not argv else " " + " ".join(shlex.quote(a) for a in argv)),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine.describe(),
        "libraries": machine.library_versions(),
        "wrk_version": wrk.version(wrk_path),
        "body_sizes": {kind: len(payloads.body(n)) for kind, n in payloads.EVENTS.items()},
        "bare_json": bare_json,
        "rabbitmq": safe_url(args.rabbitmq_url),
        "loops": support.describe(),
        "target": target_server.url if target_server else None,
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


def _available(args: argparse.Namespace, support: loops.LoopSupport, outcome: Outcome) -> List[str]:
    """The chosen servers that can run here; the others are skipped with the reason."""
    found = []
    for backend in make_backends(args.sinks, args.rabbitmq_url, args.kafka_driver):
        why = backend.unavailable()
        if backend.event_loop == loops.UVLOOP:
            why = why or support.uvloop_missing()
        if why:
            outcome.skipped[backend.name] = why
            print("bench: skipping %s: %s" % (backend.name, why), file=sys.stderr)
        else:
            found.append(backend.name)
    if not support.service_flag:
        outcome.notes.append(
            "the service has no `--event-loop` flag: it ran on its own default loop, which may not be the "
            "ceiling's plain asyncio loop"
        )
    return found


def _target(args: argparse.Namespace, bodies: dict, outcome: Outcome) -> Optional[Server]:
    """The --target as a server to measure, or None (skipped, with the reason) when nothing answers there."""
    if not args.target:
        return None
    url = target.ingest_url(args.target, args.target_dataset)
    status, note = target.probe(url, bodies["single"], args.target_header)
    print("bench: --target %s %s" % (url, note), file=sys.stderr)
    if status is None:
        outcome.skipped[target.NAME] = "%s %s" % (url, note)
        return None
    if status >= 400:
        outcome.notes.append("the target %s %s" % (url, note))
    return Server(target.NAME, None, url, headers=tuple(args.target_header))


def plan(args: argparse.Namespace, sinks: List[str], with_target: bool = False) -> str:
    """How many measurements the matrix will make, and about how long it will take."""
    count = 0
    servers = ["bare", *sinks]
    if "file-uvloop" in sinks:
        servers.append("bare-uvloop")
    if with_target:
        servers.append(target.NAME)
    for processes in args.processes:
        members = servers if processes == 1 else [name for name in servers if name in SEVERAL]
        for payload in args.payloads:
            skip = ONLY_BATCH if payload == "single" else ONLY_SINGLE
            count += len([name for name in members if name not in skip]) * args.rounds
            wide = [name for name in members if name in WIDE]
            if processes == 1 and args.upstream_connections not in (0, args.connections) and len(wide) > 1:
                count += len(wide) * args.rounds
    starts = sum(
        len(servers) if p == 1 else len([n for n in servers if n in SEVERAL]) for p in args.processes
    )  # ~3 s each
    soak = (args.soak or 0) * len(args.soak_sinks) if args.soak else 0
    total = count * (args.warmup + args.duration) + starts * 3 + soak
    return "bench: %d measurements of %.0f s (+%.0f s warm-up)%s: about %.0f minutes" % (
        count,
        args.duration,
        args.warmup,
        " and %d soaks of %.0f s" % (len(args.soak_sinks), args.soak) if args.soak else "",
        total / 60 + 0.5,
    )


def _bare_json(choice: str) -> str:
    from bench.bare import codec

    try:
        return codec(choice)[0]
    except ImportError:
        return choice + " (not installed)"
