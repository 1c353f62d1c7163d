"""Log lines: text for people, or one JSON object per line for a log pipeline (``server.log_format``).

Both carry the same fields. An access line has, beside its message, the
request's fields (``LogRecord.access``): method, path (the query's names, never
its values), status, dataset, msgid, request id, API key name, bytes, events,
duration and the client's address.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import sys
from typing import Any, Dict, Sequence, Union

from tornado.httputil import HTTPServerRequest

from tornado_ingest import jsoncodec

TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
# Broker drivers log every failed reconnect attempt at ERROR; the sinks log one
# warning per change of state (passwords masked), so the drivers speak at DEBUG only.
DRIVER_LOGGERS = ("kafka", "pika")

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class TextFormatter(logging.Formatter):
    """The classic line, then ``name=value`` for each field an access line carries."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "access", None)
        if not fields:
            return line
        return line + "".join(" %s=%s" % (name, _text(value)) for name, value in fields.items() if value is not None)


def _text(value: Any) -> str:
    """A value as it can stand in a ``name=value`` pair: quoted (as JSON) when it holds a space, a quote or ``=``."""
    text = str(value)
    if not text or any(character.isspace() or character in '"=' for character in text) or not text.isprintable():
        return json.dumps(text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the access fields, and an exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: Dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        entry.update(
            (name, value) for name, value in (getattr(record, "access", None) or {}).items() if value is not None
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return jsoncodec.dumps(entry).decode("utf-8")


def configure_logging(level: str, log_format: str = "text") -> None:
    """Where the service logs (stderr), at which level and in which format; called again once the config is read."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in DRIVER_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level == "DEBUG" else logging.CRITICAL)


def trusted_networks(cidrs: Sequence[str]) -> Sequence[Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def client_address(request: HTTPServerRequest, trusted: Sequence[Network]) -> str:
    """The client's address: the peer, or the nearest untrusted one of ``X-Forwarded-For`` when the peer is a
    trusted proxy (each trusted hop is skipped from the right; anything a client wrote further left is not read)."""
    address = str(request.remote_ip)
    if not trusted or not _is_trusted(address, trusted):
        return address
    for hop in reversed([hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]):
        address = hop
        if not _is_trusted(hop, trusted):
            break
    return address


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
