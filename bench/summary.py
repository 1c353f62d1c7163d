"""Medians over the rounds: one ``Summary`` per (processes, payload, connections, server)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Dict

from bench.payloads import EVENTS
from bench.run import Key, Outcome


@dataclass
class Summary:
    rps: float
    p50_ms: float
    p99_ms: float
    eps: float
    rounds: int
    bad: int  # socket errors + answers >= 400, summed over the rounds


def summarise(outcome: Outcome) -> Dict[Key, Summary]:
    found = {}
    for key, results in outcome.results.items():
        rps = statistics.median(r.rps for r in results)
        found[key] = Summary(
            rps=rps,
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            eps=rps * EVENTS[key[1]],
            rounds=len(results),
            bad=sum(r.errors + r.non2xx for r in results),
        )
    return found
