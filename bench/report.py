"""The console summary and RESULTS.md: every group's figures as ratios to the ceiling, the targets, the features.

Every figure is the median over the rounds; each ratio divides by the bare
handler's median measured in the same run at the same processes, payload and
connections (for latency a ratio above 1 means slower than the ceiling).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

from bench import features
from bench.run import BARE, BARE_UVLOOP, Key, Outcome
from bench.summary import Summary
from bench.targets import HEADER as TARGET_HEADER, soak_figures, targets
from sinks.kafka.confluent_options import DEFAULTS as CONFLUENT_DEFAULTS
from sinks.kafka.options import PRODUCER_DEFAULTS

PAYLOAD_NAMES = {"single": "single event", "batch": "batch of 100 events"}
HEADER = ["server", "req/s", "×bare", "events/s", "×bare", "p50 ms", "×bare", "p99 ms", "×bare", "rounds", "errors"]
ORDER = [
    BARE,
    BARE_UVLOOP,
    "file",
    "file-uvloop",
    "file-schema",
    "file-idempotency",
    "file-receipts",
    "kafka",
    "rabbitmq",
    "target",
]
WHY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "WHY.md")


def groups(summaries: Dict[Key, Summary]) -> List[Tuple[int, str, int]]:
    return sorted({key[:3] for key in summaries}, key=lambda g: (g[0], g[2], list(PAYLOAD_NAMES).index(g[1])))


def group_rows(summaries: Dict[Key, Summary], group: Tuple[int, str, int]) -> List[List[str]]:
    bare = summaries.get(group + (BARE,))
    rows = []
    for name in ORDER:
        s = summaries.get(group + (name,))
        if s is None:
            continue
        rows.append(
            [
                name,
                "%.0f" % s.rps,
                _ratio(s.rps, bare and bare.rps),
                "%.0f" % s.eps,
                _ratio(s.eps, bare and bare.eps),
                "%.2f" % s.p50_ms,
                _ratio(s.p50_ms, bare and bare.p50_ms),
                "%.2f" % s.p99_ms,
                _ratio(s.p99_ms, bare and bare.p99_ms),
                str(s.rounds),
                str(s.bad),
            ]
        )
    return rows


def group_title(group: Tuple[int, str, int]) -> str:
    processes, payload, connections = group
    return "%d process%s · %s · %d connections" % (
        processes,
        "es" if processes > 1 else "",
        PAYLOAD_NAMES[payload],
        connections,
    )


def _ratio(value: float, base: Optional[float]) -> str:
    return "%.2f" % (value / base) if base else "–"


def text_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        lines.append(
            "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        )
    return "\n".join(lines)


def md_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def console(summaries: Dict[Key, Summary], outcome: Outcome, args, bare_json: str) -> str:
    parts = []
    for group in groups(summaries):
        parts.append(
            "\n%s (%s)\n%s"
            % (group_title(group), outcome.layouts.get(group[0], ""), text_table(group_rows(summaries, group), HEADER))
        )
    parts.append("\ntargets\n" + text_table(targets(summaries, outcome, args, bare_json), TARGET_HEADER))
    parts.append("\nfeatures: on / off\n" + text_table(features.rows(summaries, args.connections), features.HEADER))
    for label, why in outcome.skipped.items():
        parts.append("skipped %s: %s" % (label, why.splitlines()[0]))
    parts += ["note: %s" % note for note in outcome.notes]
    return "\n".join(parts)


def markdown(summaries: Dict[Key, Summary], outcome: Outcome, context: dict) -> str:
    args = context["args"]
    out = ["# Benchmark results", ""]
    if args.quick:
        out += ["**Quick mode: a smoke check of the harness, too short to be a measurement.**", ""]
    out += [
        "Written by `bench/` (`python -m bench --help`) on %s. It is a benchmark, not a test: CI times nothing."
        % context["date"],
        "",
        "Command: `%s`" % context["command"],
        "",
        "## Machine",
        "",
    ]
    out += ["- %s: %s" % (name, value) for name, value in context["machine"].items()]
    out += ["- wrk: %s" % context["wrk_version"], "", "## Libraries", ""]
    out += ["- %s: %s" % (name, value) for name, value in context["libraries"].items()]
    out += ["", "## How it was measured", ""] + method(outcome, context)
    out += [
        "",
        "## Targets (issue 15)",
        "",
        md_table(targets(summaries, outcome, args, context["bare_json"]), TARGET_HEADER),
    ]
    if os.path.exists(WHY):  # the hand-written reasons for the misses, kept beside the harness
        with open(WHY, encoding="utf-8") as notes:
            out += ["", notes.read().strip()]
    out += [
        "",
        "## Optional features: on / off",
        "",
        "Each feature's service against the same service without it (file sink, 1 process, %d connections), "
        "in the same rounds; on / off is the ratio of req/s (events/s alike: both carry the same events)."
        % args.connections,
        "",
        md_table(features.rows(summaries, args.connections), features.HEADER),
        "",
        "## Figures",
        "",
    ]
    for group in groups(summaries):
        out += ["### " + group_title(group), "", md_table(group_rows(summaries, group), HEADER), ""]
    for soak in outcome.soaks:
        out += soak_markdown(soak)
    return "\n".join(out).rstrip() + "\n"


def method(outcome: Outcome, context: dict) -> List[str]:
    args = context["args"]
    out = [
        "- Each figure is the median of %d rounds of %ss, each after a %ss warm-up; in every round the servers of a "
        "group are measured in turn, the order rotating per round." % (args.rounds, args.duration, args.warmup),
        "- wrk: %d thread(s), `--timeout 10s`, POST with `Content-Type: application/json`, one body per kind "
        "(single event %d bytes; batch of 100 events %d bytes) with a fresh `params.msgid` in every request "
        "(`bench/post.lua`), so a retry-safe dataset checks and stores each one."
        % (args.threads, context["body_sizes"]["single"], context["body_sizes"]["batch"]),
        "- The ceiling: `bench/bare.py`, a Tornado handler that parses the body (%s) and answers the success envelope; "
        "no validation, no sink, no logging. Ratios are to it, same processes, body and connections."
        % context["bare_json"],
        "- Event loop: %s; `file-uvloop` is the service with `--event-loop uvloop`, `bare-uvloop` the ceiling on "
        "uvloop." % context["loops"],
        "- The service: `python -m tornado_ingest --processes N --log-level %s` (access log %s), "
        "one dataset on the sink under test."
        % (args.service_log_level, "on" if args.service_log_level in ("DEBUG", "INFO") else "off"),
        "- Sinks: file in a temporary directory (emptied after each measurement); Kafka: librdkafka's mock cluster, "
        "the sink's `%s` driver%s, the sink's defaults otherwise (`acks: all`, `linger_ms: %s`; kafka-python: "
        "`batch_size: %s`), a fresh cluster per service start; RabbitMQ at %s, a durable queue of the "
        "bench's own, declared by the sink, purged after each "
        "measurement and deleted at the end."
        % (
            args.kafka_driver,
            ' (`api_version: "2.3"`)' if args.kafka_driver == "kafka-python" else "",
            # the sink's own defaults, not a copy of them that could drift
            PRODUCER_DEFAULTS["linger_ms"] if args.kafka_driver == "kafka-python" else CONFLUENT_DEFAULTS["linger.ms"],
            PRODUCER_DEFAULTS["batch_size"],
            context["rabbitmq"],
        ),
        "- Variants, all on the file sink: `file-schema` (a JSON Schema on the dataset; batches only), "
        "`file-idempotency` (`idempotency: {window: 24h}`, in-process store; at its default `max_keys` of 100,000 a "
        "long run fills it and the oldest are forgotten, as in a busy deployment), `file-receipts` (`receipts: true`), "
        "`file-uvloop`; they run at 1 process and %d connections." % args.connections,
        "- The wide group (%s connections, as the upstream figures were) has the ceiling, file, Kafka and the target; "
        "%s processes have the ceiling, file, Kafka and RabbitMQ."
        % (args.upstream_connections or "the same", "several" if len(args.processes) > 1 else "more"),
    ]
    if context.get("target"):
        out += [
            "- `target`: %s, driven by the same wrk with the same bodies (dataset `%s`), beside the ceiling at "
            "1 process; the bench started nothing for it." % (context["target"], args.target_dataset)
        ]
    out += ["- %d process%s: %s." % (p, "es" if p > 1 else "", text) for p, text in sorted(outcome.layouts.items())]
    out += ["- errors: socket errors plus answers ≥ 400 over all rounds; any there make that row suspect."]
    for label, why in outcome.skipped.items():
        out += ["- **Skipped %s**: %s" % (label, " ".join(why.split()))]
    out += ["- **Note**: %s" % note for note in outcome.notes]
    return out


def soak_markdown(soak: dict) -> List[str]:
    out = [
        "## Memory (soak): %s sink" % soak["sink"],
        "",
        "%s sink, %d process(es), %gs of single events; %s."
        % (soak["sink"], soak["processes"], soak["seconds"], soak["layout"]),
        "",
    ]
    if soak["samples"]:
        first, last, low, high = soak_figures(soak)
        out += [
            "RSS of the service (all its processes): "
            "first %.1f MiB, last %.1f MiB, min %.1f MiB, max %.1f MiB; %d samples."
            % (first / 2**20, last / 2**20, low / 2**20, high / 2**20, len(soak["samples"]))
        ]
    result = soak.get("result")
    if result is not None:
        out += [
            "",
            "Load during the soak: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors."
            % (result.rps, result.p50_ms, result.p99_ms, result.errors + result.non2xx),
        ]
    if soak.get("error"):
        out += ["", "wrk failed during the soak: %s" % soak["error"]]
    return out + [""]
