"""Which asyncio event loop serves: uvloop when it is installed (the ``speedups`` extra), or asyncio's own.

uvloop runs Tornado's socket work in libuv, which measured faster on single
events (see bench/RESULTS.md). ``server.event_loop`` (``--event-loop``) picks:
``auto`` takes uvloop when it can be imported, ``asyncio`` turns it off,
``uvloop`` insists (and the config check refuses it when uvloop is missing).
Each worker process makes its own loop after the fork.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any, Coroutine

CHOICES = ("auto", "asyncio", "uvloop")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def takes_uvloop(choice: str) -> bool:
    return choice == "uvloop" or (choice == "auto" and uvloop_installed())


def run(main: Coroutine[Any, Any, int], choice: str) -> int:
    """``asyncio.run(main)`` on the loop ``choice`` names."""
    if takes_uvloop(choice):
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def describe(choice: str) -> str:
    if not takes_uvloop(choice):
        return "asyncio" + (" (uvloop is not installed)" if choice == "auto" else "")
    import uvloop

    return "uvloop %s" % uvloop.__version__
