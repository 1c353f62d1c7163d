"""The service in a child process, for tests of the command line and of shutdown."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def command(*args):
    return [sys.executable, "-m", "tornado_ingest", *args]


def environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("PORT", "ADDRESS", "INGEST_DATA_DIR"):
        env.pop(name, None)
    return env


def run(*args, cwd=None, input=None):
    """Run ``tornado-ingest ARGS`` to the end; the finished process (text output)."""
    return subprocess.run(
        command(*args), cwd=cwd, env=environment(), input=input, capture_output=True, text=True, timeout=30
    )


class Service:
    """The service in a child process, its log read line by line."""

    def __init__(self, args, cwd, argv=None):
        self.process = subprocess.Popen(
            argv or command(*args),
            cwd=cwd,
            env=environment(),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.log = []
        threading.Thread(target=self._read, daemon=True).start()
        match = self.wait_for(r"listening on \S+ port (\d+)")
        self.port = int(match.group(1))

    def _read(self):
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for(self, pattern, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.log.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError("no %r in the log:\n%s" % (pattern, "".join(self.log)))

    def remaining_log(self, timeout=2.0):
        """What the service logs from here on, until it has said nothing for ``timeout`` (or has exited)."""
        lines = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                return "".join(lines)
            self.log.append(line)
            lines.append(line)

    def post(self, path, body, headers=None):
        request = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.port, path),
            data=json.dumps(body).encode(),
            headers=headers or {"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self, timeout=15.0):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
