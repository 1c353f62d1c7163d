"""Send records to Kafka with kafka-python, acknowledged by the broker.

Options (YAML ``sinks.<name>``, beside ``type: kafka``):

- ``bootstrap_servers`` (default ``localhost:9092``): ``"h1:9092,h2:9092"`` or a
  list of ``host:port``.
- ``send_timeout`` (default ``10``): seconds a record may take to be
  acknowledged; after that the client gets 503 SINK_UNAVAILABLE.
- ``producer`` (default ``{}``): options passed to ``kafka.KafkaProducer`` as
  they are; a name KafkaProducer does not know is a config error.
  ``api_version`` may be written as a string (``"2.3"``). Where not set:

  - ``acks: all``: a 200 means every in-sync replica has the record;
  - ``linger_ms: 5``: records of concurrent requests share produce batches;
  - ``enable_idempotence: true``: broker-side retries never duplicate a record;
  - ``reconnect_backoff_max_ms: 1000``: a returning broker is found within ~1 s
    (kafka-python's own default backs off to 30 s);
  - ``max_block_ms``: ``send_timeout`` (a full buffer never waits longer);
  - ``client_id: tornado-ingest-<sink name>``;
  - everything else is kafka-python's default (``retries`` until
    ``delivery_timeout_ms`` = 120 s, ``compression_type: null``,
    ``allow_auto_create_topics: true``: the broker's own setting decides).

Example::

    sinks:
      bus:
        type: kafka
        bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS:-localhost:9092}
        producer: {compression_type: gzip, linger_ms: 10}
        send_timeout: 10
    datasets:
      telemetry: {sink: bus, entry_topic: telemetry.raw, key: event.did}

Every record carries the headers ``dataset`` and ``msgid``, and the dataset's
key when one is configured. The IOLoop never waits on Kafka: records are handed
to one dispatcher thread per sink, in batches, which calls
``KafkaProducer.send`` (that can block on metadata or a full buffer) and never
calls it for a topic whose metadata is not known yet: those records wait
aside while the metadata is fetched, so one slow topic holds up no other.
Acknowledgements come back to the loop in batches, one
``call_soon_threadsafe`` per burst. A topic the broker says does not exist is
``DestinationNotFound`` (404); no acknowledgement within ``send_timeout`` is
``SinkUnavailable`` (503). A record answered 503 may still reach Kafka later
(the producer keeps retrying it until ``delivery_timeout_ms``): consumers
deduplicate on ``msgid``. The service starts with Kafka down; the producer is
built, and rebuilt, in the dispatcher thread, and ``health()`` says why the
sink is down.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import re
import threading
import time
from typing import Any, Deque, Dict, List, Optional, Tuple

from voluptuous import All, Coerce, Invalid, Optional as Opt, Range, Schema

from sinks.base import (
    STATE_DOWN,
    STATE_UP,
    DestinationNotFound,
    Record,
    RecordTooLarge,
    Sink,
    SinkError,
    SinkUnavailable,
)

try:  # the driver is optional: a file-only install never needs it
    from kafka import KafkaProducer
    from kafka import errors as kafka_errors
except ImportError:  # pragma: no cover - exercised only without kafka-python
    KafkaProducer = kafka_errors = None

log = logging.getLogger(__name__)

TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
#: producer options the sink sets itself, and why a config may not.
RESERVED = {
    "bootstrap_servers": "set bootstrap_servers beside producer, not inside it",
    "key_serializer": "records are bytes already",
    "value_serializer": "records are bytes already",
}
SECRET_OPTIONS = ("sasl_plain_password", "ssl_password", "sasl_oauth_token_provider")
_USERINFO = re.compile(r"(?<=//)[^/@\s]*@|^[^/@\s:]*:[^/@\s]*@")
_VERSION = re.compile(r"^\d+(\.\d+){1,2}$")
METADATA_PROBE_INTERVAL = 5.0  # seconds between metadata probes while the sink is idle


def _kafka_python() -> None:
    if KafkaProducer is None:
        raise Invalid("kafka-python is not installed (pip install 'tornado-ingest[kafka]')")


def _servers(value: Any) -> List[str]:
    _kafka_python()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise Invalid("expected 'host:port,host:port' or a list of host:port")
    servers = [item.strip() for item in items if item.strip()]
    if not servers:
        raise Invalid("expected at least one host:port")
    return servers


def _api_version(value: Any) -> Any:
    if value is None or value == "auto":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # YAML reads 2.3 as a number
    if isinstance(value, str) and _VERSION.match(value):
        return tuple(int(part) for part in value.split("."))
    if isinstance(value, (list, tuple)) and value and all(isinstance(p, int) for p in value):
        return tuple(value)
    raise Invalid('expected a broker version such as "2.3" or "auto"')


def _producer_options(value: Any) -> Dict[str, Any]:
    _kafka_python()
    if not isinstance(value, dict):
        raise Invalid("expected a mapping of KafkaProducer options")
    options = dict(value)
    known = KafkaProducer.DEFAULT_CONFIG
    for name in options:
        if name in RESERVED:
            raise Invalid("%s is not allowed here: %s" % (name, RESERVED[name]), path=[name])
        if name not in known:
            import difflib

            close = difflib.get_close_matches(str(name), list(known), n=1)
            hint = " (did you mean %r?)" % close[0] if close else ""
            raise Invalid("unknown KafkaProducer option %r%s" % (name, hint), path=[name])
    if "api_version" in options:
        try:
            options["api_version"] = _api_version(options["api_version"])
        except Invalid as exc:
            raise Invalid(exc.error_message, path=["api_version"]) from None
    if options.get("acks", "all") not in ("all", 0, 1, -1):
        raise Invalid("expected all, 0, 1 or -1", path=["acks"])
    compressors = getattr(KafkaProducer, "_COMPRESSORS", None)
    if compressors is not None and options.get("compression_type") not in compressors:
        choices = ", ".join(str(c) for c in compressors if c is not None)
        raise Invalid("expected one of %s (or null)" % choices, path=["compression_type"])
    return options


def mask(text: str, secrets: Tuple[str, ...] = ()) -> str:
    """``text`` without passwords: URL user info and any configured secret."""
    text = _USERINFO.sub("***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class KafkaSink(Sink):
    type_name = "kafka"
    OPTIONS = Schema(
        {
            Opt("bootstrap_servers", default="localhost:9092"): _servers,
            Opt("producer", default={}): _producer_options,
            Opt("send_timeout", default=10.0): All(
                Coerce(float), Range(min=0.1, max=3600), msg="expected a number of seconds (0.1 to 3600)"
            ),
        }
    )

    def __init__(self, name: str, options: Dict[str, Any]):
        super().__init__(name, options)
        options = self.OPTIONS(options)  # idempotent: also fills the defaults when built by hand
        self.bootstrap_servers: List[str] = options["bootstrap_servers"]
        self.send_timeout: float = options["send_timeout"]
        self.producer_config = self._producer_config(options["producer"])
        self._secrets = tuple(str(options["producer"].get(key) or "") for key in SECRET_OPTIONS)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._dispatcher: Optional[_Dispatcher] = None
        self._deadlines: Deque[Tuple[float, "asyncio.Future[None]"]] = collections.deque()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._done: List[Tuple["asyncio.Future[None]", Optional[BaseException]]] = []
        self._done_lock = threading.Lock()
        self._settle_scheduled = False
        # health: the latest good and bad news, and when (time.monotonic())
        self.last_ok: Optional[float] = None
        self.last_error: Optional[str] = "not connected yet"
        self.last_error_at: float = time.monotonic()

    def _producer_config(self, producer: Dict[str, Any]) -> Dict[str, Any]:
        config: Dict[str, Any] = {
            "acks": "all",
            "linger_ms": 5,
            "enable_idempotence": True,
            "reconnect_backoff_max_ms": 1000,
            "max_block_ms": int(self.send_timeout * 1000),
            "client_id": "tornado-ingest-%s" % self.name,
        }
        config = {key: value for key, value in config.items() if key in KafkaProducer.DEFAULT_CONFIG}
        config.update(producer)
        config["bootstrap_servers"] = self.bootstrap_servers
        return config

    @classmethod
    def check_destination(cls, options: Dict[str, Any], destination: str) -> None:
        if not TOPIC_NAME.match(destination) or destination in (".", ".."):
            raise ValueError(
                "%r is not a valid Kafka topic name (1 to 249 letters, digits, '.', '_', '-'; not '.' or '..')"
                % destination
            )

    # -- the loop side -------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._dispatcher = _Dispatcher(self)
        self._dispatcher.start()

    async def send(self, destination: str, record: Record) -> None:
        dispatcher = self._dispatcher
        if dispatcher is None or dispatcher.closing:
            raise SinkUnavailable("kafka sink %r is not running" % self.name)
        if dispatcher.connect_failed:  # fail fast; while the first attempt runs, records wait for it
            raise SinkUnavailable("not connected to Kafka: %s" % self.last_error)
        future = self._loop.create_future()
        deadline = self._loop.time() + self.send_timeout
        dispatcher.submit((destination, record, future, time.monotonic() + self.send_timeout))
        self._deadlines.append((deadline, future))
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._expire)
        await future

    def _expire(self) -> None:
        """Fail the records that were not acknowledged within ``send_timeout``."""
        self._timer = None
        now = self._loop.time()
        deadlines = self._deadlines
        expired = 0
        while deadlines:
            deadline, future = deadlines[0]
            if future.done():
                deadlines.popleft()
            elif deadline <= now:
                deadlines.popleft()
                expired += 1
                future.set_exception(
                    SinkUnavailable(
                        "no acknowledgement from Kafka within %gs (%s)"
                        % (self.send_timeout, self.last_error or "no error reported")
                    )
                )
            else:
                self._timer = self._loop.call_at(deadline, self._expire)
                break
        if expired:
            self._bad_news("%d record(s) not acknowledged within %gs" % (expired, self.send_timeout), keep_cause=True)

    def _complete(self, future: "asyncio.Future[None]", error: Optional[BaseException]) -> None:
        """Any thread: queue an outcome; the loop settles queued outcomes in one go."""
        with self._done_lock:
            self._done.append((future, error))
            if self._settle_scheduled:
                return
            self._settle_scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._settle)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _settle(self) -> None:
        with self._done_lock:
            done, self._done = self._done, []
            self._settle_scheduled = False
        failure = None
        acknowledged = False
        for future, error in done:
            if error is None:
                acknowledged = True
                if not future.done():
                    future.set_result(None)
            else:
                failure = self._translate(error)
                if not future.done():
                    future.set_exception(failure)
        if acknowledged:
            self._good_news()
        if failure is not None and not isinstance(failure, DestinationNotFound):
            self._bad_news(str(failure))

    def _translate(self, error: BaseException) -> SinkError:
        if isinstance(error, SinkError):
            return error
        if isinstance(error, kafka_errors.UnknownTopicOrPartitionError):
            return DestinationNotFound("Kafka says the topic does not exist")
        if isinstance(error, kafka_errors.MessageSizeTooLargeError):
            return RecordTooLarge("record too large for Kafka: %s" % error)
        return SinkUnavailable(mask("%s: %s" % (type(error).__name__, error), self._secrets))

    def _good_news(self) -> None:
        self.last_ok = time.monotonic()

    def _bad_news(self, reason: str, keep_cause: bool = False) -> None:
        if keep_cause and self.last_error and (self.last_ok is None or self.last_error_at > self.last_ok):
            return  # a timeout after a known cause: the cause says more
        self.last_error = mask(reason, self._secrets)
        self.last_error_at = time.monotonic()

    def health(self) -> Dict[str, Any]:
        dispatcher = self._dispatcher
        running = dispatcher is not None and not dispatcher.closing and dispatcher.producer is not None
        up = running and self.last_ok is not None and self.last_ok >= self.last_error_at
        report: Dict[str, Any] = {
            "type": self.type_name,
            "state": STATE_UP if up else STATE_DOWN,
            "bootstrap_servers": [mask(server, self._secrets) for server in self.bootstrap_servers],
        }
        if self.producer_config.get("security_protocol") not in (None, "PLAINTEXT"):
            report["security_protocol"] = self.producer_config["security_protocol"]
        if not up:
            if dispatcher is None:
                report["error"] = "not started"
            elif dispatcher.closing:
                report["error"] = "closed"
            else:
                report["error"] = self.last_error or "no answer from Kafka yet"
        return report

    async def close(self) -> None:
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.stop()
            await asyncio.get_running_loop().run_in_executor(None, dispatcher.join)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._settle()
        for _, future in self._deadlines:
            if not future.done():
                future.set_exception(SinkUnavailable("kafka sink %r closed" % self.name))
        self._deadlines.clear()


# -- the dispatcher thread ------------------------------------------------------

_Item = Tuple[str, Record, "asyncio.Future[None]", float]  # topic, record, loop future, monotonic deadline
_STOP = object()
_WAKE = object()


class _Waiting:
    """Records for a topic whose metadata is being fetched."""

    __slots__ = ("items", "since", "refreshes", "request", "retry_at")

    def __init__(self) -> None:
        self.items: List[_Item] = []
        self.since = time.monotonic()
        self.refreshes = 0
        self.request: Any = None  # kafka.future.Future of the metadata update
        self.retry_at = 0.0


class _Dispatcher(threading.Thread):
    """Owns the KafkaProducer: builds it, sends what the loop hands over, flushes at close."""

    def __init__(self, sink: KafkaSink):
        super().__init__(name="kafka-sink-%s" % sink.name, daemon=True)
        self.sink = sink
        self.producer: Optional[Any] = None
        self.connect_failed = False
        self.closing = False
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()  # lists of _Item, or _STOP / _WAKE
        self._gathered: Optional[List[_Item]] = None
        self._waiting: Dict[str, _Waiting] = {}
        self._probe: Any = None
        self._probe_at = 0.0
        self._probe_sent = 0.0

    def submit(self, item: _Item) -> None:
        """On the loop: gather this loop iteration's records, hand them over in one go."""
        if self._gathered is None:
            self._gathered = []
            self.sink._loop.call_soon(self._hand_over)
        self._gathered.append(item)

    def _hand_over(self) -> None:
        gathered, self._gathered = self._gathered, None
        if gathered:
            self._queue.put(gathered)

    def stop(self) -> None:
        self.closing = True
        self._hand_over()
        self._queue.put(_STOP)

    def _wake(self, *_: Any) -> None:
        self._queue.put(_WAKE)

    # thread body

    def run(self) -> None:
        try:
            if self._build():
                self._serve()
        finally:
            self._close()

    def _build(self) -> bool:
        backoff = 0.5
        while not self.closing:
            try:
                producer = KafkaProducer(**self.sink.producer_config)
            except Exception as exc:  # NoBrokersAvailable, bad option values, ...
                reason = mask("cannot connect to Kafka: %s: %s" % (type(exc).__name__, exc), self.sink._secrets)
                self.connect_failed = True
                self._report_error(reason)
                log.warning("kafka sink %r: %s; retrying in %.1fs", self.sink.name, reason, backoff)
                if self._sleep(backoff):
                    return False
                backoff = min(backoff * 2, 5.0)
                continue
            _fix_auto_create(producer)
            self.producer = producer
            self.connect_failed = False
            self._probe_at = 0.0
            return True
        return False

    def _sleep(self, seconds: float) -> bool:
        """Wait, failing records handed over meanwhile; True if told to stop."""
        deadline = time.monotonic() + seconds
        while True:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return False
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            if item is not _WAKE:
                for record in item:
                    self.sink._complete(record[2], SinkUnavailable("not connected to Kafka: %s" % self.sink.last_error))

    def _serve(self) -> None:
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        stop = False
        while True:
            now = time.monotonic()
            timeout = max(0.0, min(self._next_wakeup(now) - now, METADATA_PROBE_INTERVAL))
            try:
                item = get(timeout=timeout) if timeout > 0 else get_nowait()
            except queue.Empty:
                item = _WAKE
            while True:
                if item is _STOP:
                    stop = True
                elif item is not _WAKE:
                    for record in item:
                        self._send(record)
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
            self._check_waiting()
            self._check_probe()
            if stop and not self._waiting:  # records waiting for metadata get their chance first
                return

    def _send(self, item: _Item) -> None:
        topic, record, future, _ = item
        if future.done():  # timed out already (or cancelled): no late duplicate
            return
        producer = self.producer
        waiting = self._waiting.get(topic)
        if waiting is None and producer._metadata.partitions_for_topic(topic) is None:
            waiting = self._waiting[topic] = _Waiting()
        if waiting is not None:
            waiting.items.append(item)
            return
        complete = self.sink._complete
        try:
            sent = producer.send(topic, value=record.value, key=record.key, headers=record.headers)
        except Exception as exc:  # a full buffer past max_block_ms, a record too large, ...
            complete(future, exc)
            return
        sent.add_callback(_acknowledged, complete, future)
        sent.add_errback(complete, future)

    def _check_waiting(self) -> None:
        """Send, or fail, the records waiting for their topic's metadata."""
        if not self._waiting:
            return
        now = time.monotonic()
        producer = self.producer
        for topic, waiting in list(self._waiting.items()):
            waiting.items = [item for item in waiting.items if item[3] > now and not item[2].done()]
            if producer._metadata.partitions_for_topic(topic) is not None:
                del self._waiting[topic]
                for item in waiting.items:
                    self._send(item)
                continue
            if not waiting.items:
                del self._waiting[topic]
                continue
            request = waiting.request
            if request is not None and request.is_done:
                waiting.request = None
                if request.failed() and isinstance(request.exception, kafka_errors.UnknownTopicOrPartitionError):
                    self._not_found(topic, waiting)
                    continue
                if request.succeeded():
                    waiting.refreshes += 1
                    self.sink.last_ok = now
                    if not producer.config.get("allow_auto_create_topics", True) or (
                        waiting.refreshes >= 3 and now - waiting.since >= 1.0
                    ):
                        # The broker answered, without the topic, and will not create it.
                        self._not_found(topic, waiting)
                        continue
                waiting.retry_at = now + producer.config.get("retry_backoff_ms", 100) / 1000.0
            if waiting.request is None and now >= waiting.retry_at:
                waiting.request = self._request_metadata(topic)

    def _not_found(self, topic: str, waiting: _Waiting) -> None:
        del self._waiting[topic]
        error = DestinationNotFound("Kafka says topic %r does not exist" % topic)
        for item in waiting.items:
            self.sink._complete(item[2], error)

    def _request_metadata(self, topic: Optional[str] = None) -> Any:
        # kafka-python has no public non-blocking way to ask for a topic's
        # metadata; these are the calls its own send() makes (2.x and 3.x).
        producer = self.producer
        if topic is not None:
            producer._sender.add_topic(topic)
        request = producer._metadata.request_update()
        request.add_both(self._wake)
        producer._sender.wakeup()
        return request

    def _check_probe(self) -> None:
        """Keep ``health()`` true while idle: ask for metadata now and then."""
        now = time.monotonic()
        probe = self._probe
        if probe is not None:
            if probe.is_done:
                self._probe = None
                if probe.succeeded() or isinstance(probe.exception, kafka_errors.UnknownTopicOrPartitionError):
                    self.sink.last_ok = now
                else:
                    self._report_error(
                        "metadata request failed: %s: %s" % (type(probe.exception).__name__, probe.exception)
                    )
                interval = METADATA_PROBE_INTERVAL if self._sink_up() else 1.0
                self._probe_at = now + interval
            elif now - self._probe_sent > self.sink.send_timeout:
                self._report_error("no answer from Kafka for %.0fs" % (now - self._probe_sent))
                self._probe = None
                self._probe_at = now
        elif now >= self._probe_at:
            self._probe_sent = now
            self._probe = self._request_metadata()

    def _next_wakeup(self, now: float) -> float:
        wake = self._probe_sent + self.sink.send_timeout if self._probe is not None else self._probe_at
        for waiting in self._waiting.values():
            wake = min(wake, waiting.retry_at if waiting.request is None else now + 0.1)
        return wake

    def _sink_up(self) -> bool:
        sink = self.sink
        return sink.last_ok is not None and sink.last_ok >= sink.last_error_at

    def _report_error(self, reason: str) -> None:
        loop = self.sink._loop
        try:
            loop.call_soon_threadsafe(self.sink._bad_news, reason)
        except RuntimeError:
            pass

    def _close(self) -> None:
        error = SinkUnavailable("kafka sink %r is closing" % self.sink.name)
        for waiting in self._waiting.values():
            for item in waiting.items:
                self.sink._complete(item[2], error)
        self._waiting.clear()
        while True:  # anything handed over after the stop
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP and item is not _WAKE:
                for record in item:
                    self.sink._complete(record[2], error)
        producer, self.producer = self.producer, None
        if producer is not None:
            try:
                producer.flush(timeout=self.sink.send_timeout)
            except Exception as exc:
                log.warning("kafka sink %r: records still in flight at close: %s", self.sink.name, exc)
            try:
                producer.close(timeout=self.sink.send_timeout)
            except Exception as exc:  # pragma: no cover - nothing better to do than say so
                log.warning("kafka sink %r did not close cleanly: %s", self.sink.name, exc)


def _acknowledged(complete: Any, future: "asyncio.Future[None]", _metadata: Any) -> None:
    complete(future, None)


def _fix_auto_create(producer: Any) -> None:
    """kafka-python 3.0 does not hand ``allow_auto_create_topics`` to its metadata."""
    cluster_config = getattr(producer._metadata, "config", None)
    wanted = producer.config.get("allow_auto_create_topics")
    if (
        isinstance(cluster_config, dict)
        and wanted is not None
        and cluster_config.get("allow_auto_create_topics") != wanted
    ):
        cluster_config["allow_auto_create_topics"] = wanted
