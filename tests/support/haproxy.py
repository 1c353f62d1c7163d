"""HAProxy as a child process, running ``conf/deploy/haproxy/haproxy.cfg`` with test addresses, and what it sees."""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from typing import Dict, List, Optional

from tests.support.service import ROOT

CONFIG = os.path.join(ROOT, "conf", "deploy", "haproxy", "haproxy.cfg")


def haproxy_binary() -> Optional[str]:
    return shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(path, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HAProxy:
    """``haproxy -f conf/deploy/haproxy/haproxy.cfg -db`` in front of ``replica_ports``; its log in ``log_path``."""

    def __init__(self, binary: str, replica_ports: List[int], log_path: str) -> None:
        self.port, self.stats_port = free_port(), free_port()
        env = dict(os.environ, INGEST_LISTEN="127.0.0.1:%d" % self.port, HAPROXY_STATS="127.0.0.1:%d" % self.stats_port)
        for number, port in enumerate(replica_ports, start=1):
            env["REPLICA_%d" % number] = "127.0.0.1:%d" % port
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [binary, "-f", CONFIG, "-db"], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def servers(self) -> Dict[str, str]:
        """Each replica's state as HAProxy sees it: ``UP``, ``DOWN``, ``UP 1/2``... (from the stats CSV)."""
        with urllib.request.urlopen("http://127.0.0.1:%d/stats;csv" % self.stats_port, timeout=5) as response:
            text = response.read().decode().lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "replicas" and row["svname"].startswith("replica-")
        }

    def wait_until(self, server: str, status: str, timeout: float = 15.0) -> float:
        """Wait until HAProxy says ``server`` is ``status``; how long it took."""
        started = time.monotonic()
        while True:
            try:
                if self.servers().get(server) == status:
                    return time.monotonic() - started
            except OSError:
                pass  # not listening yet
            if self.process.poll() is not None:
                raise AssertionError("haproxy exited (%s):\n%s" % (self.process.returncode, self.log()))
            if time.monotonic() - started > timeout:
                raise AssertionError("%s not %s within %ss: %s" % (server, status, timeout, self.servers()))
            time.sleep(0.05)

    def log(self) -> str:
        with open(self.log_path, "rb") as stream:
            return stream.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
