"""What each optional feature costs: the service with it on against off, measured in the same run.

On and off are two services side by side in the same rounds (the file sink,
1 process, the main connection count): a schema on the dataset, idempotency
with the in-process store, receipts on every answer, and the service on
uvloop. The spool is measured by ``python -m bench --spool`` (its happy path
needs a broker sink with and without a spool): its row is read from
``bench/SPOOL.md`` and says so, with that run's date.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Tuple

from bench.run import BARE, BARE_UVLOOP, Key
from bench.summary import Summary
from bench.targets import PAYLOAD

SPOOL_MD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "SPOOL.md")
HEADER = ["feature", "payload", "off", "on", "on / off", "p99 ms off → on", "measured"]

#: (feature, server with it off, server with it on, payloads)
PAIRS: List[Tuple[str, str, str, Tuple[str, ...]]] = [
    ("dataset schema (JSON Schema 2020-12, jsonschema-rs)", "file", "file-schema", ("batch",)),
    (
        "idempotency (in-process store, window 24h; a fresh msgid per request)",
        "file",
        "file-idempotency",
        ("single", "batch"),
    ),
    ("receipts (`receipts: true` on the dataset)", "file", "file-receipts", ("single", "batch")),
    ("uvloop (speedups extra): the service", "file", "file-uvloop", ("single",)),
    ("uvloop: the ceiling, for comparison", BARE, BARE_UVLOOP, ("single",)),
]


def rows(summaries: Dict[Key, Summary], connections: int, spool_path: str = SPOOL_MD) -> List[List[str]]:
    found = []
    for feature, off_name, on_name, payloads in PAIRS:
        for payload in payloads:
            off = summaries.get((1, payload, connections, off_name))
            on = summaries.get((1, payload, connections, on_name))
            found.append(pair_row(feature, payload, off, on))
    return found + spool_rows(spool_path)


def _rate(s: Summary, payload: str) -> str:
    return "%.0f req/s" % s.rps if payload == "single" else "%.0f req/s (%.1fk ev/s)" % (s.rps, s.eps / 1000)


def pair_row(feature: str, payload: str, off: Optional[Summary], on: Optional[Summary]) -> List[str]:
    if off is None or on is None or not off.rps:
        return [feature, PAYLOAD[payload], "–", "–", "not measured", "–", "this run"]
    return [
        feature,
        PAYLOAD[payload],
        _rate(off, payload),
        _rate(on, payload),
        "%.2f" % (on.rps / off.rps),
        "%.2f → %.2f" % (off.p99_ms, on.p99_ms),
        "this run",
    ]


def spool_rows(path: str) -> List[List[str]]:
    """The happy-path rows of SPOOL.md (sink, payload, off req/s, off p99, on req/s, on p99, on / off, rounds)."""
    feature = "spool (`spool:` on the sink, broker up)"
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return [[feature, "–", "–", "–", "not measured", "–", "run `python -m bench --spool`"]]
    date = re.search(r"Written by .*? on (.+?)\.\s*$", text, re.MULTILINE)
    source = "bench/SPOOL.md (`python -m bench --spool`, %s)" % (date.group(1) if date else "undated")
    found = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0] in ("kafka", "rabbitmq") and cells[1] in PAYLOAD:
            sink, payload, off_rps, off_p99, on_rps, on_p99, ratio, _ = cells
            found.append(
                [
                    "%s, %s sink" % (feature, sink),
                    PAYLOAD[payload],
                    "%s req/s" % off_rps,
                    "%s req/s" % on_rps,
                    ratio,
                    "%s → %s" % (off_p99, on_p99),
                    source,
                ]
            )
    return found or [[feature, "–", "–", "–", "not found in bench/SPOOL.md", "–", source]]
