"""Signals: SIGTERM and SIGINT stop and drain; SIGHUP reloads the config; a worker never outlives its supervisor."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Callable, Optional

import tornado.ioloop

log = logging.getLogger(__name__)


class StopSignals:
    """SIGTERM and SIGINT stop the service; SIGHUP calls ``on_hangup`` (a reload), and never kills."""

    STOP = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, stopping: asyncio.Event, on_hangup: Callable[[], None]) -> None:
        self.stopping = stopping
        self.on_hangup = on_hangup
        self.loop = asyncio.get_running_loop()

    def __enter__(self) -> "StopSignals":
        for signum in self.STOP:
            self.loop.add_signal_handler(signum, self._stop, signum)
        self.loop.add_signal_handler(signal.SIGHUP, self._hangup)
        return self

    def _hangup(self) -> None:
        log.info("SIGHUP received: reloading the config")
        self.on_hangup()

    def __exit__(self, *exc_info: object) -> None:
        for signum in (*self.STOP, signal.SIGHUP):
            self.loop.remove_signal_handler(signum)

    def _stop(self, signum: int) -> None:
        if not self.stopping.is_set():
            log.info("%s received: stopping", signal.Signals(signum).name)
        self.stopping.set()


class OrphanWatch:
    """In a worker: once a second, whether the supervisor is still its parent; if not, stop (and drain)."""

    INTERVAL_MS = 1000

    def __init__(self, supervisor: Optional[int], stopping: asyncio.Event) -> None:
        self.supervisor = supervisor
        self.stopping = stopping
        self._timer: Optional[tornado.ioloop.PeriodicCallback] = None

    def __enter__(self) -> "OrphanWatch":
        if self.supervisor is not None:
            self._check()  # the supervisor may have died between the fork and now
            self._timer = tornado.ioloop.PeriodicCallback(self._check, self.INTERVAL_MS)
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.stop()

    def _check(self) -> None:
        if os.getppid() != self.supervisor and not self.stopping.is_set():
            log.warning("the supervisor (pid %s) is gone: this worker stops", self.supervisor)
            self.stopping.set()
