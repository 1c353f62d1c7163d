"""Medians, ratios to the ceiling, the issue's targets, and RESULTS.md.

Every figure is the median over the rounds; each ratio divides by the bare
handler's median measured in the same run at the same processes, payload and
connections (for latency a ratio above 1 means slower than the ceiling).
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from bench.payloads import EVENTS
from bench.run import BARE, Key, Outcome

PAYLOAD_NAMES = {"single": "single event", "batch": "batch of 100 events"}
UPSTREAM_RPS = 500.0  # the issue: Express + kafkajs on this machine kind, 50 connections


@dataclass
class Summary:
    rps: float
    p50_ms: float
    p99_ms: float
    eps: float
    rounds: int
    bad: int  # socket errors + non-2xx answers, summed over the rounds


def summarise(outcome: Outcome) -> Dict[Key, Summary]:
    found = {}
    for key, results in outcome.results.items():
        found[key] = Summary(
            rps=statistics.median(r.rps for r in results),
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            eps=statistics.median(r.rps for r in results) * EVENTS[key[1]],
            rounds=len(results),
            bad=sum(r.errors + r.non2xx for r in results),
        )
    return found


def groups(summaries: Dict[Key, Summary]) -> List[Tuple[int, str, int]]:
    return sorted({key[:3] for key in summaries}, key=lambda g: (g[0], g[2], list(PAYLOAD_NAMES).index(g[1])))


HEADER = ["server", "req/s", "×bare", "events/s", "×bare", "p50 ms", "×bare", "p99 ms", "×bare", "rounds", "errors"]
ORDER = [BARE, "file", "file-schema", "kafka", "rabbitmq"]


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


# -- the targets ------------------------------------------------------


def _at_least(value: float, target: float) -> str:
    return "met" if value >= target else "missed by %s" % _percent((target - value) / target)


def _at_most(value: float, target: float) -> str:
    if value <= target:
        return "met"
    if value >= 2 * target:
        return "missed: %.1f× the limit" % (value / target)
    return "missed by %s" % _percent((value - target) / target)


def _percent(fraction: float) -> str:
    return ("%.1f%%" if fraction < 0.1 else "%.0f%%") % (fraction * 100)


def targets(
    summaries: Dict[Key, Summary], outcome: Outcome, connections: int, upstream_connections: int
) -> List[List[str]]:
    def get(processes: int, payload: str, server: str, conns: int = connections) -> Optional[Summary]:
        return summaries.get((processes, payload, conns, server))

    rows: List[List[str]] = []

    def ratio_row(what: str, target: float, top: Optional[Summary], base: Optional[Summary], label: str) -> None:
        if top is None or base is None or not base.rps:
            rows.append([what, "≥ %.2f" % target, "not measured", "–"])
            return
        value = top.rps / base.rps
        rows.append(
            [
                what,
                "≥ %.2f" % target,
                "%.2f (%.0f / %.0f req/s %s)" % (value, top.rps, base.rps, label),
                _at_least(value, target),
            ]
        )

    c = "%d conns" % connections
    for shape, name, target in (("single", "single event", 0.90), ("batch", "batch of 100", 0.75)):
        row = "%s, file sink, 1 process, %s" % (name, c)
        ratio_row(row, target, get(1, shape, "file"), get(1, shape, BARE), "file / bare")
    for sink, target in (("kafka", 0.60), ("rabbitmq", 0.50)):
        for payload in ("single", "batch"):
            ratio_row(
                "%s sink, %s, 1 process, %s" % (sink, PAYLOAD_NAMES[payload], c),
                target,
                get(1, payload, sink),
                get(1, payload, "file"),
                "%s / file" % sink,
            )
    top, base = get(1, "batch", "file-schema"), get(1, "batch", "file")
    what = "dataset schema (2020-12, jsonschema-rs), batch of 100, file sink, 1 process, %s" % c
    if top is None or base is None or not base.rps:
        rows.append([what, "a cost: no target", "not measured", "–"])
    else:
        cost = "%.2f (%.0f / %.0f req/s with / without a schema)" % (top.rps / base.rps, top.rps, base.rps)
        rows.append([what, "a cost: no target", cost, "–"])
    for payload in ("single", "batch"):
        s = get(1, payload, "file")
        rows.append(
            [
                "p99 latency, file sink, %s, 1 process, %s" % (PAYLOAD_NAMES[payload], c),
                "≤ 15 ms",
                "%.2f ms" % s.p99_ms if s else "not measured",
                _at_most(s.p99_ms, 15.0) if s else "–",
            ]
        )
    conns = upstream_connections if get(1, "single", "kafka", upstream_connections) else connections
    s = get(1, "single", "kafka", conns)
    what = "kafka sink, single event, 1 process, %d conns, vs upstream (%d req/s)" % (conns, UPSTREAM_RPS)
    if s is None:
        rows.append([what, "≥ 2000 req/s, p99 ≤ 20 ms", "not measured", "–"])
    else:
        misses = []
        if s.rps < 4 * UPSTREAM_RPS:
            misses.append("req/s " + _at_least(s.rps, 4 * UPSTREAM_RPS))
        if s.p99_ms > 20.0:
            misses.append("p99 " + _at_most(s.p99_ms, 20.0))
        rows.append(
            [
                what,
                "≥ 2000 req/s, p99 ≤ 20 ms",
                "%.0f req/s (%.1f× upstream), p99 %.2f ms" % (s.rps, s.rps / UPSTREAM_RPS, s.p99_ms),
                "; ".join(misses) or "met",
            ]
        )
    for payload in ("single", "batch"):
        two, one = get(2, payload, "file"), get(1, payload, "file")
        bare2, bare1 = get(2, payload, BARE), get(1, payload, BARE)
        what = "--processes 2 vs 1, file sink, %s, %s" % (PAYLOAD_NAMES[payload], c)
        if two is None or one is None or not one.rps:
            rows.append([what, "≥ 1.40", "not measured", "–"])
            continue
        value = two.rps / one.rps
        context = "; bare %.2f" % (bare2.rps / bare1.rps) if bare2 and bare1 and bare1.rps else ""
        rows.append(
            [what, "≥ 1.40", "%.2f (%.0f / %.0f req/s%s)" % (value, two.rps, one.rps, context), _at_least(value, 1.40)]
        )
    rows.append(memory_row(outcome))
    return rows


def memory_row(outcome: Outcome) -> List[str]:
    soak = outcome.soak
    what = "memory: RSS over a soak run"
    if not soak or not soak["samples"]:
        return [what, "flat ± 10%", "not measured (run with --soak 300)", "–"]
    first, last, low, high = soak_figures(soak)
    spread = max(high - first, first - low) / first * 100
    return [
        what + " (%gs, %s sink)" % (soak["seconds"], soak["sink"]),
        "flat ± 10%",
        "first %.1f, last %.1f, max %.1f MiB (%.1f%% from first)" % (first / 2**20, last / 2**20, high / 2**20, spread),
        "met" if spread <= 10 else "missed by %.1f points" % (spread - 10),
    ]


def soak_figures(soak: dict) -> Tuple[int, int, int, int]:
    values = [rss for _, rss in soak["samples"]]
    return values[0], values[-1], min(values), max(values)


TARGET_HEADER = ["what", "target", "measured", "verdict"]


def console(summaries: Dict[Key, Summary], outcome: Outcome, connections: int, upstream_connections: int) -> str:
    parts = []
    for group in groups(summaries):
        parts.append(
            "\n%s (%s)\n%s"
            % (group_title(group), outcome.layouts.get(group[0], ""), text_table(group_rows(summaries, group), HEADER))
        )
    parts.append(
        "\ntargets\n" + text_table(targets(summaries, outcome, connections, upstream_connections), TARGET_HEADER)
    )
    for label, why in outcome.skipped.items():
        parts.append("skipped %s: %s" % (label, why.splitlines()[0]))
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
    out += ["", "## How it was measured", ""]
    out += [
        "- Each figure is the median of %d rounds of %ss, each after a %ss warm-up; in every round the bare handler "
        "and the service (one per sink) are measured in turn, the order rotating per round."
        % (args.rounds, args.duration, args.warmup),
        "- wrk: %d thread(s), `--timeout 10s`, POST with `Content-Type: application/json`, one body reused per kind "
        "(single event %d bytes; batch of 100 events %d bytes)."
        % (args.threads, context["body_sizes"]["single"], context["body_sizes"]["batch"]),
        "- The ceiling: `bench/bare.py`, a Tornado handler that parses the body (%s) and answers the success envelope; "
        "no validation, no sink, no logging. Ratios are to it, same processes, body and connections."
        % context["bare_json"],
        "- The service: `python -m tornado_ingest --processes N --log-level %s` (access log %s), "
        "one dataset on the sink under test."
        % (args.service_log_level, "on" if args.service_log_level in ("DEBUG", "INFO") else "off"),
        "- Sinks: file in a temporary directory (emptied after each measurement); Kafka: librdkafka's mock cluster "
        '(kafka-python with `api_version: "2.3"`, the sink\'s defaults otherwise: `acks: all`, `linger_ms: 5`), '
        "a fresh one per "
        "service start; RabbitMQ at %s, a durable queue of the bench's own, declared by the sink, purged after each "
        "measurement and deleted at the end." % context["rabbitmq"],
        "- The upstream comparison row uses %s connections, as the upstream figures do."
        % (args.upstream_connections or "the same"),
    ]
    out += ["- %d process%s: %s." % (p, "es" if p > 1 else "", text) for p, text in sorted(outcome.layouts.items())]
    out += ["- errors: socket errors plus answers ≥ 400 over all rounds; any there make that row suspect."]
    for label, why in outcome.skipped.items():
        out += ["- **Skipped %s**: %s" % (label, " ".join(why.split()))]
    out += [
        "",
        "## Targets (issue 6)",
        "",
        md_table(targets(summaries, outcome, args.connections, args.upstream_connections), TARGET_HEADER),
    ]
    if os.path.exists(WHY):  # the hand-written reasons for the misses, kept beside the harness
        with open(WHY, encoding="utf-8") as notes:
            out += ["", notes.read().strip()]
    out += ["", "## Figures", ""]
    for group in groups(summaries):
        out += ["### " + group_title(group), "", md_table(group_rows(summaries, group), HEADER), ""]
    if outcome.soak:
        out += soak_markdown(outcome.soak)
    return "\n".join(out).rstrip() + "\n"


WHY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "WHY.md")


def soak_markdown(soak: dict) -> List[str]:
    out = [
        "## Memory (soak)",
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
