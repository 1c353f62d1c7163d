"""Start, pin, watch and stop the processes a run needs, so none outlives it.

Each server starts in a session of its own (a Ctrl-C in the terminal reaches
only the bench, which then stops them in order), with its output in a log file
(never a pipe that could fill) and its stdin a pipe the bench holds: helpers
that watch stdin exit even if the bench is killed outright.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import IO, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StartFailed(RuntimeError):
    """A server did not come up; the message ends with the tail of its log."""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(argv: Sequence[str], cpu: Optional[int]) -> List[str]:
    return (["taskset", "-c", str(cpu)] if cpu is not None else []) + list(argv)


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen, log_path: str):
        self.name, self.popen, self.log_path = name, popen, log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


class Processes:
    """Every process the bench started; ``stop_all`` ends each one, by its id."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.procs: List[Proc] = []

    def start(
        self, name: str, argv: Sequence[str], cpu: Optional[int] = None, env: Optional[Dict[str, str]] = None
    ) -> Proc:
        log_path = os.path.join(self.log_dir, "%s.log" % name)
        log: IO[bytes] = open(log_path, "ab")
        try:
            popen = subprocess.Popen(
                pinned(argv, cpu),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        finally:
            log.close()
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 20.0) -> None:
        """SIGTERM (the service drains), then SIGKILL to its whole process group if it lingers."""
        if proc.alive():
            try:
                proc.popen.send_signal(signal.SIGTERM)
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print("bench: %s did not stop within %ss: killed" % (proc.name, timeout), file=sys.stderr)
        _killpg(proc.pid)  # workers of a parent that is gone, if any
        if proc.popen.stdin:
            try:
                proc.popen.stdin.close()
            except OSError:
                pass
        if proc.alive():
            proc.popen.wait(5)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                print("bench: stopping %s: %s" % (proc.name, exc), file=sys.stderr)


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def wait_ready(proc: Proc, url: str, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StartFailed("%s exited with status %s:\n%s" % (proc.name, proc.popen.returncode, proc.log_tail()))
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = "HTTP %d" % exc.code
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise StartFailed("%s not ready within %ss at %s (%s):\n%s" % (proc.name, timeout, url, last, proc.log_tail()))


def tree_pids(root: int) -> List[int]:
    """``root`` and all its descendants, from /proc."""
    parents: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def rss_bytes(root: int) -> int:
    """Resident memory of a process and all its descendants (the service's workers)."""
    total = 0
    for pid in tree_pids(root):
        try:
            with open("/proc/%d/status" % pid) as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total
