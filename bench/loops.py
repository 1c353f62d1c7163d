"""Which event loop each server runs: the plain asyncio loop for like-for-like rows, uvloop for the speedups row.

The service's ``--event-loop`` flag is newer than some builds the bench may
drive, so support is read from its ``--help`` once: without the flag the
service runs on whatever loop it picks itself and the uvloop row is skipped,
with the reason in RESULTS.md.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from typing import List, Optional

from bench.procs import ROOT

PLAIN = "asyncio"
UVLOOP = "uvloop"


@dataclass
class LoopSupport:
    service_flag: bool  # the service understands --event-loop
    uvloop: bool  # uvloop is importable here

    def service_args(self, loop: str) -> List[str]:
        """The service's flags for ``loop``; none when it has no such flag."""
        return ["--event-loop", loop] if self.service_flag else []

    def uvloop_missing(self) -> Optional[str]:
        """Why the uvloop rows cannot run, or None."""
        if not self.uvloop:
            return "uvloop is not installed (pip install uvloop, or the speedups extra)"
        if not self.service_flag:
            return "the service has no --event-loop flag: `python -m tornado_ingest --help` does not list it"
        return None

    def describe(self) -> str:
        if self.service_flag:
            return "the service with `--event-loop asyncio` and the ceiling on the plain asyncio loop"
        return "the ceiling on the plain asyncio loop; the service on its own default loop (it has no --event-loop)"


def detect() -> LoopSupport:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tornado_ingest", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        flag = "--event-loop" in done.stdout
    except (OSError, subprocess.TimeoutExpired):
        flag = False
    return LoopSupport(service_flag=flag, uvloop=importlib.util.find_spec("uvloop") is not None)
