"""Several worker processes on one listening socket (``server.processes``).

The parent binds, then forks before any sink connects, so each worker has its
own producers and connections. SIGTERM or SIGINT to the parent is passed to
every worker, each drains on its own, and the parent exits 0 when all did. A
worker that dies unexpectedly is replaced, unless workers keep dying at start.
SIGHUP is passed to every worker too: each reloads the config. Should the parent
die anyway (SIGKILL, a crash), each worker notices within a second and stops
(see ``OrphanWatch``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from typing import Callable, Dict, Iterator

log = logging.getLogger(__name__)

#: where prometheus_client's multiprocess mode keeps the workers' figures
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"

QUICK_DEATH_SECONDS = 2.0
MAX_QUICK_DEATHS = 5


@contextlib.contextmanager
def metrics_shared_by(processes: int) -> Iterator[None]:
    """With several workers, a directory where each writes its metrics and any scrape reads all of them.

    prometheus_client's multiprocess mode reads ``PROMETHEUS_MULTIPROC_DIR``
    when it is imported: this runs before anything imports it. A directory the
    operator sets is used as it is (it must be empty at start); else a fresh one
    is made and removed at the end.
    """
    if processes < 2 or os.environ.get(MULTIPROCESS_DIRECTORY):
        yield
        return
    directory = tempfile.mkdtemp(prefix="tornado-ingest-metrics-")
    os.environ[MULTIPROCESS_DIRECTORY] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def supervise(processes: int, work: Callable[[], int]) -> int:
    """Fork ``processes`` workers running ``work``; return 0 if all stopped cleanly."""
    workers: Dict[int, float] = {}  # pid -> start time
    state = {"stopping": False}

    def forward(signum: int, _frame: object) -> None:
        if not state["stopping"]:
            log.info("%s received: stopping %d workers", signal.Signals(signum).name, len(workers))
        state["stopping"] = True
        for pid in list(workers):
            _kill_quietly(pid, signal.SIGTERM)

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the worker's loop takes it: never the parent's
            code = 1
            try:
                code = work()
            except BaseException:
                log.exception("worker crashed")
            finally:
                logging.shutdown()
                os._exit(code)
        workers[pid] = time.monotonic()

    def reload(signum: int, _frame: object) -> None:
        log.info("SIGHUP received: %d workers reload the config", len(workers))
        for pid in list(workers):
            _kill_quietly(pid, signal.SIGHUP)

    signal.signal(signal.SIGHUP, reload)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(processes):
        spawn()

    status, quick_deaths = 0, 0
    while workers:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        started = workers.pop(pid, None)
        _forget_metrics_of(pid)
        if started is None:
            continue
        code = os.waitstatus_to_exitcode(wait_status)
        if state["stopping"]:
            if code != 0:
                log.error("worker %d stopped with status %s", pid, code)
                status = 1
            continue
        quick_deaths = quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH_SECONDS else 0
        if quick_deaths >= MAX_QUICK_DEATHS:
            log.error("workers keep dying at start (last: pid %d, status %s): giving up", pid, code)
            forward(signal.SIGTERM, None)
            status = 1
            continue
        log.error("worker %d died with status %s: starting another", pid, code)
        spawn()
    return status


def _kill_quietly(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _forget_metrics_of(pid: int) -> None:
    """A worker ended: its live gauges (records in flight, up) stop counting; its counters stay in the totals."""
    if os.environ.get(MULTIPROCESS_DIRECTORY):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
