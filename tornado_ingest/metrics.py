"""Prometheus metrics (``GET /metrics``): what the service counts, with labels that stay bounded.

Label values come from the config, never from a client: a dataset id that is
not configured is counted as ``(unknown)``, a request that is not an ingest
request (``/health``, an unknown path) as ``(none)``; outcome codes are the
contract's. With ``--processes N`` every worker writes its figures where
prometheus_client's multiprocess mode reads them (``PROMETHEUS_MULTIPROC_DIR``,
set by the command line before any worker starts), so a scrape of any worker
answers for the whole service.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any, Dict, Iterable, Tuple

import tornado
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from tornado_ingest import __version__
from tornado_ingest.workers import MULTIPROCESS_DIRECTORY

UNKNOWN_DATASET = "(unknown)"
NOT_INGEST = "(none)"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: request and acknowledgement latencies, seconds: from a fast file write to a send_timeout
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PREFIX = "tornado_ingest_"


def multiprocess_directory() -> str:
    return os.environ.get(MULTIPROCESS_DIRECTORY, "")


def _installed_version(distribution: str) -> str:
    """A driver's version without importing it (a file-only service never loads kafka-python)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class Metrics:
    """One per process, kept across reloads; handlers and the router record into it."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()

        def counter(name: str, meaning: str, labels: Iterable[str]) -> Counter:
            return Counter(PREFIX + name, meaning, list(labels), registry=registry)

        def gauge(name: str, meaning: str, labels: Iterable[str], mode: Any) -> Gauge:
            return Gauge(PREFIX + name, meaning, list(labels), registry=registry, multiprocess_mode=mode)

        def histogram(name: str, meaning: str, labels: Iterable[str]) -> Histogram:
            return Histogram(PREFIX + name, meaning, list(labels), registry=registry, buckets=LATENCY_BUCKETS)

        self.requests = counter(
            "requests_total",
            "Requests answered, by dataset, outcome code and status class",
            ("dataset", "code", "status"),
        )
        self.request_seconds = histogram("request_duration_seconds", "Time to answer a request", ("dataset",))
        self.events = counter("events_total", "Events accepted", ("dataset", "sink"))
        self.bytes = counter("record_bytes_total", "Bytes of the records accepted", ("dataset", "sink"))
        self.ack_seconds = histogram("sink_ack_duration_seconds", "Time a sink took to acknowledge a record", ("sink",))
        self.in_flight = gauge("sink_records_in_flight", "Records waiting on a sink", ("sink",), "livesum")
        self.max_inflight = gauge(
            "sink_max_inflight", "The sink's max_inflight (summed over workers)", ("sink",), "livesum"
        )
        self.sink_up = gauge("sink_up", "1 while a sink is up (in every worker), else 0", ("sink",), "livemin")
        self.spool_records = gauge("spool_records", "Records on a sink's spool, undelivered", ("sink",), "livesum")
        self.spool_bytes = gauge("spool_bytes", "Bytes of records on a sink's spool", ("sink",), "livesum")
        self.spool_oldest = gauge(
            "spool_oldest_age_seconds", "How long the oldest record on a sink's spool has waited", ("sink",), "livemax"
        )
        self.spooled = counter("spooled_records_total", "Records a sink could only spool (answered 202)", ("sink",))
        self.replayed = counter("replayed_records_total", "Spooled records delivered to the broker", ("sink",))
        self.spool_full = counter("spool_refused_full_total", "Records refused (503): the spool was full", ("sink",))
        self.refusals = counter("sink_refusals_total", "Requests a sink refused: 429 and 503", ("sink", "status"))
        self.idempotency = counter(
            "idempotency_total",
            "Retry-safe requests: replayed, conflicts (409), unchecked (store down, written) and refused (503)",
            ("dataset", "result"),
        )
        self.reloads = counter("config_reloads_total", "Config reloads, by result", ("result",))
        self.config_info = gauge(
            "config_info", "1 for the config in force (its SHA-256), 0 for earlier ones", ("sha256", "source"), "max"
        )
        build = gauge(
            "build_info",
            "The versions this service runs on",
            ("version", "python", "tornado", "kafka_python", "pika"),
            "max",
        )
        build.labels(
            __version__,
            platform.python_version(),
            tornado.version,
            _installed_version("kafka-python"),
            _installed_version("pika"),
        ).set(1)
        self._requests: Dict[Tuple[str, str, str], Any] = {}  # label children, looked up once each
        self._accepted: Dict[Tuple[str, str], Tuple[Any, Any]] = {}
        self._latency: Dict[str, Any] = {}

    def request_answered(self, dataset: str, code: str, status: int, seconds: float) -> None:
        labels = (dataset, code, "%dxx" % (status // 100))
        child = self._requests.get(labels)
        if child is None:
            child = self._requests[labels] = self.requests.labels(*labels)
        child.inc()
        latency = self._latency.get(dataset)
        if latency is None:
            latency = self._latency[dataset] = self.request_seconds.labels(dataset)
        latency.observe(seconds)

    def accepted(self, dataset: str, sink: str, events: int, size: int) -> None:
        labels = (dataset, sink)
        children = self._accepted.get(labels)
        if children is None:
            children = self._accepted[labels] = (self.events.labels(*labels), self.bytes.labels(*labels))
        children[0].inc(events)
        children[1].inc(size)

    def config_loaded(self, digest: str, source: str, previous: Tuple[str, str] = ("", "")) -> None:
        if previous[0] and previous != (digest, source):
            self.config_info.labels(*previous).set(0)
        self.config_info.labels(digest, source).set(1)

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's figures, or the whole service's with several workers."""
        directory = multiprocess_directory()
        if not directory:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=directory)
        return generate_latest(merged)


class SpoolFigures:
    """A sink's spool report (from its ``/health``) into the gauges, and its running totals into counters."""

    def __init__(self, metrics: Metrics, sink: str) -> None:
        self.records = metrics.spool_records.labels(sink)
        self.bytes = metrics.spool_bytes.labels(sink)
        self.oldest = metrics.spool_oldest.labels(sink)
        self.counters = {
            "spooled": metrics.spooled.labels(sink),
            "replayed": metrics.replayed.labels(sink),
            "refused_full": metrics.spool_full.labels(sink),
        }
        self._seen = dict.fromkeys(self.counters, 0)

    def update(self, report: Dict[str, Any]) -> None:
        self.records.set(report.get("records", 0))
        self.bytes.set(report.get("bytes", 0))
        self.oldest.set(report.get("oldest_age_seconds") or 0)
        for name, counter in self.counters.items():
            total = report.get(name, 0)
            if total > self._seen[name]:
                counter.inc(total - self._seen[name])
            self._seen[name] = total
