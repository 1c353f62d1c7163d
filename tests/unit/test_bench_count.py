"""``python -m bench.count``: it counts a request's bytecodes through a real socket, for either server."""

from __future__ import annotations

import logging
import re
import sys

import pytest

from bench import count


@pytest.mark.parametrize("argv", [["--server", "bare"], ["--sink", "file", "--payload", "batch"]])
def test_counts_requests_through_the_server(argv, capsys):
    assert count.main(argv + ["--requests", "3", "--top", "40"]) == 0
    assert sys.gettrace() is None  # the tracer is gone: nothing after the count pays for it
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+ counts with sys.monitoring instead
    assert monitoring is None or monitoring.get_tool(count.OpcodeCounter.TOOL) is None
    out = capsys.readouterr().out
    per_request = int(re.search(r"(\d+) bytecodes per request \(3 requests\)", out).group(1))
    assert per_request > 1000  # a request through Tornado, not an empty count
    assert "tornado/http1connection.py" in out  # the server side was counted, not only the client
    if "--sink" in argv:
        assert "tornado_ingest/handlers/ingest.py" in out


def test_quiet_counts_nothing_and_says_nothing(capsys):
    assert count.main(["--quiet", "--requests", "2"]) == 0
    assert capsys.readouterr().out == ""


def test_leaves_the_service_log_level_as_it_found_it():
    service_log = logging.getLogger("tornado_ingest")
    before = service_log.level
    service_log.setLevel(logging.INFO)  # as a test that reads the service's start-up log would have it
    try:
        count.main(["--quiet", "--requests", "1"])
        assert service_log.level == logging.INFO
    finally:
        service_log.setLevel(before)
