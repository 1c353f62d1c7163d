"""Several replicas of the service, each a child process on its own fixed port, stopped and started one by one."""

from __future__ import annotations

import json
import os
import signal
from typing import Dict, List

from tests.support.haproxy import free_port
from tests.support.service import Service


class Replicas:
    """``count`` services with one config file, in ``cwd``; replica ``n`` (from 1) always on ``ports[n-1]``."""

    def __init__(self, count: int, config_path: str, cwd: str) -> None:
        self.config_path, self.cwd = config_path, cwd
        self.ports = [free_port() for _ in range(count)]
        self.services: Dict[int, Service] = {}
        self.started: List[Service] = []
        for number in range(1, count + 1):
            self.start(number)

    def start(self, number: int) -> Service:
        args = ("--config", self.config_path, "--port", str(self.ports[number - 1]), "--address", "127.0.0.1")
        service = self.services[number] = Service(args, cwd=self.cwd)
        self.started.append(service)
        return service

    def stop(self, number: int, timeout: float = 30.0) -> int:
        """SIGTERM, and wait for the exit; its status."""
        return self.services[number].stop(timeout)

    def kill(self, number: int) -> None:
        self.services[number].process.send_signal(signal.SIGKILL)
        self.services[number].process.wait(10)

    def close(self) -> None:
        for service in self.started:
            service.kill()


def lines_of(path: str) -> List[dict]:
    """The records a file sink wrote (none if the file is not there yet)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]
