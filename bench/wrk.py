"""Drive a server with wrk and read back the one line ``post.lua`` prints from ``done()``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from typing import List, Optional, Sequence

from bench.payloads import MSGID
from bench.procs import pinned

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "post.lua")
MARK = "BENCH-RESULT "
MISSING = "bench: wrk not found on PATH. Install it: apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)."


class WrkFailed(RuntimeError):
    """wrk exited badly or printed no result line."""


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors (connect, read, write, timeout)
    non2xx: int  # answers with status >= 400

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def find_wrk() -> Optional[str]:
    return shutil.which("wrk")


def version(wrk: str) -> str:
    try:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def run(
    wrk: str,
    url: str,
    body_path: str,
    connections: int,
    seconds: float,
    threads: int = 1,
    cpu: Optional[int] = None,
    headers: Sequence[str] = (),
) -> Result:
    """One wrk run; every request gets a fresh msgid (see post.lua), ``headers`` are "Name: value" lines."""
    threads = max(1, min(threads, connections))
    argv: List[str] = [
        wrk,
        "-t%d" % threads,
        "-c%d" % connections,
        "-d%ds" % max(1, round(seconds)),
        "--timeout",
        "10s",
        "-s",
        LUA,
        url,
        "--",
        body_path,
        MSGID,
        uuid.uuid4().hex[:12],
        *headers,
    ]
    try:
        done = subprocess.run(pinned(argv, cpu), capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired as exc:
        raise WrkFailed("wrk did not finish: %s" % exc) from None
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            return Result(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000.0,
                p99_ms=data["p99_us"] / 1000.0,
                errors=int(data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"]),
                non2xx=int(data["non2xx"]),
            )
    raise WrkFailed(
        "wrk (exit %s) printed no result: %s" % (done.returncode, (done.stderr or done.stdout).strip()[-500:])
    )
