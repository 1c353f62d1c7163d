"""What the figures were measured on: the machine and the library versions, for RESULTS.md."""

from __future__ import annotations

import os
import platform
import sys
from typing import Dict, List


def usable_cpus() -> List[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe() -> Dict[str, str]:
    return {
        "cpu": cpu_model(),
        "cores": "%d usable (%d online)" % (len(usable_cpus()), os.cpu_count() or 0),
        "kernel": "%s %s" % (platform.system(), platform.release()),
        "python": "%s %s" % (platform.python_implementation(), sys.version.split()[0]),
    }


LIBRARIES = ("tornado", "kafka-python", "crc32c", "pika", "orjson", "confluent-kafka", "voluptuous", "PyYAML")


def library_versions() -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
