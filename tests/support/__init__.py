"""Helpers the tests share: requests and envelopes, brokers, a TCP proxy, the service as a process.

Imported normally (``from tests.support.data_in import ingest_request``); the
fixtures that use them live in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> NoReturn:
    """Something a test needs is missing: skip on a laptop, fail in CI (``CI=true``), where nothing may skip."""
    if IN_CI:
        pytest.fail("%s (CI=true: this test must run)" % reason)
    pytest.skip(reason)
