"""AMQP errors in a few words, for ``/health``, the logs and the 503s."""

from __future__ import annotations

from sinks.base import describe_error
from sinks.rabbitmq.compat import pika

# pika nests its reasons: AMQPConnectionError(AMQPConnectionWorkflowFailed([AMQPConnector...Error(OSError)]))
_MAX_NESTING = 5


class ConnectionLost(Exception):
    """The connection went away while connecting; the reason is already recorded."""


def describe(error: BaseException) -> str:
    """A short reason for an AMQP error, without pika's nesting."""
    for _ in range(_MAX_NESTING):
        attempts = getattr(error, "exceptions", None)
        inner = attempts[-1] if attempts else getattr(error, "exception", None)
        if not isinstance(inner, BaseException) and error.args and isinstance(error.args[0], BaseException):
            inner = error.args[0]
        if not isinstance(inner, BaseException):
            break
        error = inner
    if pika is not None:
        if isinstance(error, pika.exceptions.ProbableAuthenticationError):
            return "authentication refused (check the user and password)"
        if isinstance(error, (pika.exceptions.ConnectionClosed, pika.exceptions.ChannelClosed)):
            return "(%s) %s" % (error.reply_code, error.reply_text)
    if isinstance(error, ConnectionLost):
        return str(error)
    return describe_error(error)
