"""Health as a type: what a sink says of itself, read by ``/health``, ``/ready`` and ``Sink.is_up``.

A sink keeps a ``HealthState`` (up or down, why, since when) that it moves on
its own events, and answers ``health()`` with a ``Health`` snapshot of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class Health:
    """One sink's state at one moment; ``error`` and ``details`` never hold a secret."""

    up: bool
    error: Optional[str] = None  # why it is down
    since: Optional[float] = None  # wall-clock time (time.time()) it came into this state, when known
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON-able facts: a masked URL, counts
    spooling: bool = False  # down, but its records go to a local spool (answered 202): the service is still ready


class HealthState:
    """The latest up/down state of a sink and since when: the last event wins.

    ``mark_up`` and ``mark_down`` answer whether the state changed, so a sink
    can log one line per change instead of one per event.
    """

    def __init__(self, error: str = "not started") -> None:
        self.up = False
        self.error: Optional[str] = error
        self.since = time.time()
        self._judged = False  # no event yet: the first one is a change, whichever way it goes

    def mark_up(self) -> bool:
        changed = not self.up or not self._judged
        if changed:
            self.up, self.since, self._judged = True, time.time(), True
        self.error = None
        return changed

    def mark_down(self, error: str, keep_cause: bool = False) -> bool:
        """Down because of ``error``; with ``keep_cause`` an earlier reason of this outage is kept (it says more)."""
        changed = self.up or not self._judged
        if self.up:
            self.since = time.time()
        self.up, self._judged = False, True
        if changed or not (keep_cause and self.error):
            self.error = error
        return changed

    def snapshot(self, **details: Any) -> Health:
        return Health(up=self.up, error=self.error, since=self.since, details=details)
