"""Helpers for the RabbitMQ tests: the broker's address, an admin client, a freezable proxy.

The admin side uses pika's ``BlockingConnection``: tests call it from an
executor thread (one connection per call), never on the service's loop.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

RABBITMQ_URL = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"


def broker_address(url: str = RABBITMQ_URL) -> Tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "localhost", parts.port or (5671 if parts.scheme == "amqps" else 5672)


def with_address(url: str, host: str, port: int) -> str:
    """The same URL (user, password, vhost, query) pointing at another host and port."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = "%s@%s:%d" % (userinfo, host, port) if userinfo else "%s:%d" % (host, port)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def with_password(url: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    user = parts.username or "guest"
    netloc = "%s:%s@%s" % (user, password, parts.netloc.rpartition("@")[2])
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def broker_unreachable_reason(url: str = RABBITMQ_URL) -> Optional[str]:
    """None if an AMQP connection opens, else why not."""
    import pika

    try:
        parameters = pika.URLParameters(url)
        parameters.socket_timeout = parameters.stack_timeout = 3
        parameters.connection_attempts = 1
        pika.BlockingConnection(parameters).close()
        return None
    except Exception as exc:  # any failure means: no broker to test against
        return "RabbitMQ at %s is not reachable: %r" % (broker_address(url), exc)


def reachable_admin(url: str = RABBITMQ_URL) -> "Admin":
    """An ``Admin`` of the broker at ``url``; the test skips without one (fails with CI=true)."""
    from tests.support import skip_or_fail

    reason = broker_unreachable_reason(url)
    if reason is not None:
        skip_or_fail(reason)
    return Admin(url)


class Admin:
    """Blocking admin calls against the real broker (run them off the loop)."""

    def __init__(self, url: str = RABBITMQ_URL):
        self.url = url

    def _connection(self) -> Any:
        import pika

        return pika.BlockingConnection(pika.URLParameters(self.url))

    def drain(self, queue: str) -> List[Tuple[Any, Any, bytes]]:
        """Every message now in ``queue``, as (method, properties, body), acknowledged."""
        connection = self._connection()
        try:
            channel = connection.channel()
            messages = []
            while True:
                method, properties, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return messages
                messages.append((method, properties, body))
        finally:
            connection.close()

    def message_count(self, queue: str) -> int:
        """How many messages ``queue`` holds now (a passive declare)."""
        connection = self._connection()
        try:
            return connection.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            connection.close()

    def exists(self, kind: str, name: str) -> bool:
        """Passive declare of an ``exchange`` or ``queue``."""
        import pika.exceptions

        connection = self._connection()
        try:
            channel = connection.channel()
            if kind == "exchange":
                channel.exchange_declare(name, passive=True)
            else:
                channel.queue_declare(name, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return False
            raise
        finally:
            if connection.is_open:
                connection.close()

    def redeclare(self, kind: str, name: str, **kwargs: Any) -> Optional[int]:
        """Declare again with these arguments: None if equivalent, else the broker's reply code."""
        import pika.exceptions

        connection = self._connection()
        try:
            channel = connection.channel()
            if kind == "exchange":
                channel.exchange_declare(name, **kwargs)
            else:
                channel.queue_declare(name, **kwargs)
            return None
        except pika.exceptions.ChannelClosedByBroker as exc:
            return exc.reply_code
        finally:
            if connection.is_open:
                connection.close()

    def delete(self, queues: List[str] = (), exchanges: List[str] = ()) -> None:
        connection = self._connection()
        try:
            channel = connection.channel()
            for queue in queues:
                channel.queue_delete(queue)
            for exchange in exchanges:
                channel.exchange_delete(exchange)
        finally:
            connection.close()


def headers_of(properties: Any) -> Dict[str, str]:
    """AMQP headers as str (pika hands long strings back as bytes or str by version)."""
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in (properties.headers or {}).items()}
