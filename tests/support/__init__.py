"""Helpers the tests share: requests and envelopes, brokers, a TCP proxy, the service as a process.

Imported normally (``from tests.support.data_in import ingest_request``); the
fixtures that use them live in ``tests/conftest.py``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> NoReturn:
    """Something a test needs is missing: skip on a laptop, fail in CI (``CI=true``), where nothing may skip."""
    if IN_CI:
        pytest.fail("%s (CI=true: this test must run)" % reason)
    pytest.skip(reason)


def installed_or_skip(module: str, extra: str = "") -> ModuleType:
    """The module a test needs, imported; missing, it is ``skip_or_fail`` with what installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        skip_or_fail("%s is not installed%s" % (module, " (the %s extra)" % extra if extra else ""))
