"""Publish records to RabbitMQ with publisher confirms: a 200 means the broker confirmed.

Options (YAML ``sinks.<name>``, beside ``type: rabbitmq``):

- ``url`` (default ``amqp://guest:guest@localhost:5672/%2F``): the broker, as an
  AMQP URI (``amqps://`` for TLS). Query options pika knows (``?heartbeat=``...)
  are read, but the options below win where both are given. The password is
  never logged nor shown by ``/health`` (``amqp://guest:***@...``).
- ``exchange`` (default ``""``): the exchange every record is published to. The
  default exchange routes by queue name, so ``entry_topic`` is then a queue name;
  with a named exchange ``entry_topic`` is the routing key. A named exchange not
  listed under ``declare`` must exist (it is checked at connect).
- ``declare`` (default none): topology declared at every connect, all durable.
  ``exchanges``: ``[{name, type (default direct: direct, fanout, topic,
  headers or a plugin's type), arguments (default {})}]``; ``queues``:
  ``[{name, arguments (default {}, e.g. {x-queue-type: quorum}), bind}]`` where
  ``bind`` is one ``{exchange, routing_key (default: the queue name)}`` or a
  list of them.
- ``confirm_timeout`` (default 10): seconds to wait for the broker's confirm
  before the client gets a 503. Such a record may still be stored later (the
  client's retry makes a duplicate, never a loss).
- ``max_unconfirmed`` (default 10000): records awaiting a confirm at once; more
  are answered 503 at once instead of queueing in memory.
- ``heartbeat`` (default 30): AMQP heartbeat in seconds (0 turns it off); a dead
  connection is noticed within about two of them.
- ``connect_timeout`` (default 5): seconds for one connection attempt (TCP,
  TLS, AMQP handshake); ``start`` waits at most this long for the first one.
- ``reconnect_delay`` (default 0.5) and ``reconnect_max_delay`` (default 30):
  seconds between reconnection attempts, doubling from the first to the cap
  (with jitter); reset after a successful connect. There is no attempt limit.
- ``connection_name`` (default ``tornado-ingest <sink name>@<host name>``): the
  name the broker shows for this connection (management UI, ``rabbitmqctl``).

Example::

    sinks:
      rabbit:
        type: rabbitmq
        url: ${RABBITMQ_URL:-amqp://guest:guest@localhost:5672/%2F}
        exchange: ingest
        declare:
          exchanges: [{name: ingest, type: topic}]
          queues: [{name: orders, bind: {exchange: ingest, routing_key: orders}}]
        confirm_timeout: 10
    datasets:
      orders: {sink: rabbit, entry_topic: orders}    # entry_topic = routing key

Every message is persistent (``delivery_mode`` 2), ``application/json``, with
headers ``dataset`` and ``msgid``, and published ``mandatory``: a message no
queue takes comes back (404 TOPIC_NOT_FOUND) instead of vanishing. A nack, a
lost connection, a missing confirm or a broker that blocks publishers (resource
alarm) answers 503 SINK_UNAVAILABLE. One connection and one confirming channel
per sink run on the service's own asyncio loop (pika's ``AsyncioConnection``);
the sink reconnects by itself.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional

from voluptuous import All, Any as AnyOf, Coerce, Invalid, Length, Optional as Opt, Range, Required, Schema

from sinks.base import STATE_DOWN, STATE_UP, DestinationNotFound, Record, Sink, SinkUnavailable

try:
    import pika
    import pika.exceptions
    from pika.adapters.asyncio_connection import AsyncioConnection
except ImportError:  # pragma: no cover - exercised on installs without the extra
    pika = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DEFAULT_URL = "amqp://guest:guest@localhost:5672/%2F"
MAX_ROUTING_KEY_BYTES = 255
CONTENT_TYPE = "application/json"
PERSISTENT = 2


if pika is not None:

    class _Connection(AsyncioConnection):
        """pika's ``AsyncioConnection``, writing once per loop iteration.

        pika hands its transport each frame apart (method, header and body: three
        per message) and the transport sends each with its own ``send()``.
        Gathering what one loop iteration produced into one write divides the
        system calls per message by three or more. This overrides a private
        method of pika (1.2 to 1.4); were it renamed, pika would write as before.
        """

        def __init__(self, *args: Any, **kwargs: Any):
            self._out_loop = kwargs["custom_ioloop"]
            self._out_frames: Optional[List[bytes]] = None
            super().__init__(*args, **kwargs)

        def _output_marshaled_frames(self, marshaled_frames: Any) -> None:
            for marshaled in marshaled_frames:
                self.bytes_sent += len(marshaled)
                self.frames_sent += 1
            if self._out_frames is None:
                self._out_frames = list(marshaled_frames)
                self._out_loop.call_soon(self._flush_frames)
            else:
                self._out_frames.extend(marshaled_frames)

        def _flush_frames(self) -> None:
            frames, self._out_frames = self._out_frames, None
            if frames and getattr(self, "_transport", None) is not None:
                self._adapter_emit_data(b"".join(frames))


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        userinfo, _, hostinfo = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        return urllib.parse.urlunsplit(parts._replace(netloc="%s:***@%s" % (user, hostinfo)))
    except ValueError:
        return "<unparsable url>"


def _amqp_url(value: Any) -> str:
    if pika is None:
        raise Invalid("the rabbitmq sink needs pika: pip install 'tornado-ingest[rabbitmq]'")
    if not isinstance(value, str) or urllib.parse.urlsplit(value).scheme not in ("amqp", "amqps"):
        raise Invalid("expected an amqp:// or amqps:// URL")
    try:
        pika.URLParameters(value)
    except Exception as exc:
        raise Invalid("not a usable AMQP URL (%s): %s" % (mask_url(value), exc)) from None
    return value


_name = All(str, Length(min=1, max=255), msg="expected a name of 1 to 255 characters")
_seconds = All(Coerce(float), Range(min=0), msg="expected a number of seconds (0 or more)")
_positive_seconds = All(Coerce(float), Range(min=0.001), msg="expected a positive number of seconds")
_binding = Schema({Required("exchange"): _name, "routing_key": All(str, Length(max=255))})

EXCHANGE_SCHEMA = Schema(
    {Required("name"): _name, Opt("type", default="direct"): _name, Opt("arguments", default={}): dict}
)
QUEUE_SCHEMA = Schema(
    {
        Required("name"): _name,
        Opt("arguments", default={}): dict,
        Opt("bind", default=[]): AnyOf(
            [_binding], All(_binding, lambda b: [b]), msg="expected {exchange, routing_key} or a list of them"
        ),
    }
)


class RabbitMQSink(Sink):
    type_name = "rabbitmq"
    OPTIONS = Schema(
        {
            Opt("url", default=DEFAULT_URL): _amqp_url,
            Opt("exchange", default=""): All(str, Length(max=255)),
            Opt("declare", default={}): Schema({"exchanges": [EXCHANGE_SCHEMA], "queues": [QUEUE_SCHEMA]}),
            Opt("confirm_timeout", default=10.0): _positive_seconds,
            Opt("max_unconfirmed", default=10000): All(Coerce(int), Range(min=1), msg="expected a positive number"),
            "heartbeat": All(Coerce(int), Range(min=0, max=65535), msg="expected seconds from 0 to 65535"),
            Opt("connect_timeout", default=5.0): _positive_seconds,
            Opt("reconnect_delay", default=0.5): _seconds,
            Opt("reconnect_max_delay", default=30.0): _seconds,
            "connection_name": _name,
        }
    )

    def __init__(self, name: str, options: Dict[str, Any]):
        options = self.OPTIONS(options)
        super().__init__(name, options)
        self.url = options["url"]
        self.safe_url = mask_url(self.url)
        self.exchange = options["exchange"]
        self.declare = options["declare"]
        self.confirm_timeout = options["confirm_timeout"]
        self.max_unconfirmed = options["max_unconfirmed"]
        self.connect_timeout = options["connect_timeout"]
        self.reconnect_delay = options["reconnect_delay"]
        self.reconnect_max_delay = max(options["reconnect_max_delay"], self.reconnect_delay)
        self.parameters = self._parameters(options)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional["asyncio.Task[None]"] = None
        self._first_attempt: Optional[asyncio.Event] = None
        self._connection: Any = None
        self._channel: Any = None
        self._lost: Optional["asyncio.Future[None]"] = None
        self._ready = False
        self._closing = False
        self._blocked: Optional[str] = None
        self._tag = 0
        # delivery tag -> [future, routing key, body, published at, returned?]; oldest first
        self._pending: "collections.OrderedDict[int, List[Any]]" = collections.OrderedDict()
        self._sweeper: Optional[asyncio.TimerHandle] = None
        self.last_error: Optional[str] = "not started"
        self.down_since: Optional[float] = time.time()
        self.connects = 0

    def _parameters(self, options: Dict[str, Any]) -> "pika.URLParameters":
        parameters = pika.URLParameters(self.url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query)
        if "heartbeat" in options or "heartbeat" not in query:
            parameters.heartbeat = options.get("heartbeat", 30)
        parameters.socket_timeout = self.connect_timeout
        parameters.stack_timeout = self.connect_timeout
        parameters.connection_attempts = 1  # the sink retries, with its own backoff
        parameters.retry_delay = 0
        name = options.get("connection_name") or "tornado-ingest %s@%s" % (self.name, socket.gethostname())
        parameters.client_properties = {"connection_name": name}
        return parameters

    @classmethod
    def check_destination(cls, options: Dict[str, Any], destination: str) -> None:
        if len(destination.encode("utf-8")) > MAX_ROUTING_KEY_BYTES:
            raise ValueError("a routing key is at most %d bytes" % MAX_ROUTING_KEY_BYTES)

    # -- the sink contract ----------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._first_attempt = asyncio.Event()
        self._runner = self._loop.create_task(self._run())
        try:  # connect before traffic if the broker is there; never wait long
            await asyncio.wait_for(self._first_attempt.wait(), self.connect_timeout)
        except asyncio.TimeoutError:
            pass  # still connecting: health() says why, the runner keeps trying

    async def send(self, destination: str, record: Record) -> None:
        if not self._ready:
            raise SinkUnavailable(self._why_down())
        if self._blocked is not None:
            raise SinkUnavailable("the broker blocks publishing: %s" % self._blocked)
        pending = self._pending
        if len(pending) >= self.max_unconfirmed:
            raise SinkUnavailable("%d records already await a confirm (max_unconfirmed)" % len(pending))
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
            headers={"dataset": record.dataset, "msgid": record.msgid},
        )
        try:
            self._channel.basic_publish(self.exchange, destination, record.value, properties, mandatory=True)
        except Exception as exc:  # the channel or connection just closed
            raise SinkUnavailable("cannot publish: %s" % _describe(exc)) from None
        loop = self._loop
        future = loop.create_future()
        self._tag += 1
        pending[self._tag] = [future, destination, record.value, loop.time(), False]
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_interval(), self._sweep)
        await future

    def health(self) -> Dict[str, Any]:
        report: Dict[str, Any] = {
            "type": self.type_name,
            "state": STATE_UP if self._ready and self._blocked is None else STATE_DOWN,
            "url": self.safe_url,
            "exchange": self.exchange,
            "unconfirmed": len(self._pending),
            "connects": self.connects,
        }
        if not self._ready:
            report["error"] = self._why_down()
            report["down_since"] = self.down_since
        elif self._blocked is not None:
            report["error"] = "the broker blocks publishing: %s" % self._blocked
        return report

    async def close(self) -> None:
        self._closing = True
        deadline = time.monotonic() + self.confirm_timeout
        while self._pending and self._ready and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._fail_pending(SinkUnavailable("the sink is closing"))
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                pass
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    # -- connection lifecycle ---------------------------------------------------

    async def _run(self) -> None:
        delay = self.reconnect_delay
        try:
            while not self._closing:
                try:
                    await asyncio.wait_for(self._connect(), self.connect_timeout * 2)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not isinstance(exc, _ConnectionLost):  # else the reason is recorded already
                        self._went_down("cannot connect to %s: %s" % (self.safe_url, _describe(exc)))
                    self._drop_connection()
                else:
                    delay = self.reconnect_delay
                    self._first_attempt.set()
                    await self._lost
                    continue  # reconnect at once after a loss; back off from the next failure
                finally:
                    self._first_attempt.set()
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(max(delay * 2, 0.1), self.reconnect_max_delay)
        finally:
            await self._shutdown()

    async def _connect(self) -> None:
        loop = self._loop
        self._lost = lost = loop.create_future()
        opened = loop.create_future()

        def on_open(connection: Any) -> None:
            if not opened.done():
                opened.set_result(connection)

        def on_open_error(connection: Any, error: BaseException) -> None:
            if not opened.done():
                opened.set_exception(error if isinstance(error, BaseException) else Exception(str(error)))

        self._connection = _Connection(
            self.parameters,
            on_open_callback=on_open,
            on_open_error_callback=on_open_error,
            on_close_callback=self._on_connection_closed,
            custom_ioloop=loop,
        )
        connection = await opened
        connection.add_on_connection_blocked_callback(self._on_blocked)
        connection.add_on_connection_unblocked_callback(self._on_unblocked)
        channel = await self._call(lambda done: connection.channel(on_open_callback=done))
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        await self._call(lambda done: channel.confirm_delivery(self._on_confirm, callback=done))
        await self._declare(channel)
        self._tag = 0
        self._blocked = None
        self._ready = True
        self.connects += 1
        self.last_error = None
        log.info(
            "rabbitmq sink %r: connected to %s (%s)",
            self.name,
            self.safe_url,
            "reconnect %d" % (self.connects - 1) if self.connects > 1 else "first connect",
        )
        if lost.done():  # closed while we were finishing the handshake
            self._ready = False

    async def _declare(self, channel: Any) -> None:
        declared = set()
        for exchange in self.declare.get("exchanges", []):
            await self._call(
                lambda done: channel.exchange_declare(
                    exchange["name"],
                    exchange_type=exchange["type"],
                    durable=True,
                    arguments=exchange["arguments"] or None,
                    callback=done,
                )
            )
            declared.add(exchange["name"])
        for queue in self.declare.get("queues", []):
            await self._call(
                lambda done: channel.queue_declare(
                    queue["name"], durable=True, arguments=queue["arguments"] or None, callback=done
                )
            )
            for binding in queue["bind"]:
                await self._call(
                    lambda done: channel.queue_bind(
                        queue["name"],
                        binding["exchange"],
                        routing_key=binding.get("routing_key", queue["name"]),
                        callback=done,
                    )
                )
        if self.exchange and self.exchange not in declared:
            await self._call(lambda done: channel.exchange_declare(self.exchange, passive=True, callback=done))

    async def _call(self, start: Callable[[Callable[..., None]], None]) -> Any:
        """Run one asynchronous pika operation; fail if the connection is lost meanwhile."""
        done = self._loop.create_future()

        def callback(result: Any = None, *_: Any) -> None:
            if not done.done():
                done.set_result(result)

        start(callback)
        lost = self._lost
        await asyncio.wait([done, lost], return_when=asyncio.FIRST_COMPLETED)
        if done.done():
            return done.result()
        raise _ConnectionLost(self.last_error or "connection lost")

    def _on_connection_closed(self, connection: Any, reason: BaseException) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        self._lost_with("connection to %s lost: %s" % (self.safe_url, _describe(reason)))

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if channel is not self._channel:
            return
        connection = self._connection
        if connection is None or connection.is_closing or connection.is_closed:
            self._lost_with("connection to %s lost: %s" % (self.safe_url, _describe(reason)))
        else:
            self._lost_with("channel closed: %s" % _describe(reason))
        self._drop_connection()  # start again from a fresh connection

    def _lost_with(self, why: str) -> None:
        self._went_down(why)
        self._channel = None
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def _went_down(self, why: str) -> None:
        was_ready, self._ready = self._ready, False
        if was_ready or self.last_error is None:
            self.down_since = time.time()
        if why != self.last_error and not self._closing:
            log.warning("rabbitmq sink %r: %s", self.name, why)
        self.last_error = why
        self._fail_pending(SinkUnavailable(why))

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = None
        if connection is not None and not (connection.is_closing or connection.is_closed):
            try:
                connection.close()
            except Exception:  # pragma: no cover - already going
                pass

    async def _shutdown(self) -> None:
        self._ready = False
        connection, self._channel = self._connection, None
        if connection is None or connection.is_closed:
            return
        if not connection.is_open and not connection.is_closing:  # still opening: abort it
            self._connection = None
            try:
                connection.close()
            except Exception:  # pragma: no cover - pika refuses in some opening states
                pass
            return
        closed = self._loop.create_future()
        self._lost = closed
        if not connection.is_closing:
            connection.close()
        try:
            await asyncio.wait_for(asyncio.shield(closed), 2.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
        log.info("rabbitmq sink %r: connection to %s closed", self.name, self.safe_url)

    def _on_blocked(self, connection: Any, frame: Any) -> None:
        self._blocked = getattr(frame.method, "reason", None) or "resource alarm"
        log.warning("rabbitmq sink %r: the broker blocks publishing (%s)", self.name, self._blocked)

    def _on_unblocked(self, connection: Any, frame: Any) -> None:
        self._blocked = None
        log.info("rabbitmq sink %r: the broker accepts publishing again", self.name)

    def _why_down(self) -> str:
        if self._closing:
            return "the sink is closing"
        return self.last_error or "not connected"

    # -- confirms ---------------------------------------------------------------

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ack = isinstance(method, pika.spec.Basic.Ack)
        tag = method.delivery_tag
        pending = self._pending
        if method.multiple:
            while pending:
                first = next(iter(pending))
                if first > tag:
                    break
                self._settle(pending.popitem(last=False)[1], ack)
        else:
            entry = pending.pop(tag, None)
            if entry is not None:
                self._settle(entry, ack)

    def _settle(self, entry: List[Any], ack: bool) -> None:
        future = entry[0]
        if future.done():
            return
        if not ack:
            future.set_exception(SinkUnavailable("the broker refused the message (basic.nack)"))
        elif entry[4]:
            future.set_exception(DestinationNotFound(entry[4]))
        else:
            future.set_result(None)

    def _on_return(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        # basic.return comes before the ack of the same message; it carries no
        # delivery tag, so it is the oldest unconfirmed one with this key and body.
        for entry in self._pending.values():
            if not entry[4] and entry[1] == method.routing_key and entry[2] == body:
                entry[4] = "no queue is bound to routing key %r on %s (%s %s)" % (
                    method.routing_key,
                    "exchange %r" % method.exchange if method.exchange else "the default exchange",
                    method.reply_code,
                    method.reply_text,
                )
                return

    def _sweep_interval(self) -> float:
        return max(0.05, min(1.0, self.confirm_timeout / 10))

    def _sweep(self) -> None:
        """Fail the records whose confirm is overdue (oldest first)."""
        self._sweeper = None
        pending = self._pending
        deadline = self._loop.time() - self.confirm_timeout
        expired = 0
        while pending:
            entry = pending[next(iter(pending))]
            if entry[3] > deadline:
                break
            pending.popitem(last=False)
            expired += 1
            if not entry[0].done():
                entry[0].set_exception(SinkUnavailable("no confirm from the broker within %gs" % self.confirm_timeout))
        if expired:
            log.warning(
                "rabbitmq sink %r: %d records got no confirm within %gs", self.name, expired, self.confirm_timeout
            )
        if pending:
            self._sweeper = self._loop.call_later(self._sweep_interval(), self._sweep)

    def _fail_pending(self, error: SinkUnavailable) -> None:
        pending, self._pending = self._pending, collections.OrderedDict()
        for entry in pending.values():
            if not entry[0].done():
                entry[0].set_exception(SinkUnavailable(str(error)))


def _describe(exc: BaseException) -> str:
    """A short reason for an AMQP error, without pika's nesting."""
    for _ in range(5):  # AMQPConnectionError(AMQPConnectionWorkflowFailed([AMQPConnector...Error(OSError)]))
        attempts = getattr(exc, "exceptions", None)
        inner = attempts[-1] if attempts else getattr(exc, "exception", None)
        if not isinstance(inner, BaseException) and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    if pika is not None:
        if isinstance(exc, pika.exceptions.ProbableAuthenticationError):
            return "authentication refused (check the user and password)"
        if isinstance(exc, (pika.exceptions.ConnectionClosed, pika.exceptions.ChannelClosed)):
            return "(%s) %s" % (exc.reply_code, exc.reply_text)
    if isinstance(exc, _ConnectionLost):
        return str(exc)
    return "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__


class _ConnectionLost(Exception):
    """The connection went away while connecting; the reason is already recorded."""
