"""Records moved aside: damaged bytes found in a segment, and records the broker will never take.

Each goes to its own file in ``<lane>/quarantine/``, named after where it
was (``<destination dir>.<segment>.<offset>.<why>``), with a log line
saying so: never silently dropped, never blocking the records after it. A file
once written is not written again (a segment read twice finds the same damage
twice). These files are not counted in ``max_bytes``: look at them, then
delete them.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from sinks.spool.durable import copy_range, make_directory

log = logging.getLogger(__name__)

QUARANTINE_DIRECTORY = "quarantine"


class Quarantine:
    def __init__(self, lane_path: str, sink_name: str) -> None:
        self.path = os.path.join(lane_path, QUARANTINE_DIRECTORY)
        self.sink_name = sink_name

    def keep(self, segment_path: str, start: int, end: int, why: str, detail: str) -> Optional[str]:
        """Copy ``[start, end)`` of a segment aside; the new file's path, or None if it was kept before."""
        log_name = os.path.basename(os.path.dirname(segment_path))
        segment = os.path.splitext(os.path.basename(segment_path))[0]
        target = os.path.join(self.path, "%s.%s.%d.%s" % (log_name, segment, start, why))
        if os.path.exists(target):
            return None
        make_directory(self.path)
        copy_range(segment_path, start, end, target)
        log.warning(
            "spool of sink %r: %s: %d bytes at %s offset %d moved aside to %s",
            self.sink_name,
            detail,
            end - start,
            segment_path,
            start,
            target,
        )
        return target
