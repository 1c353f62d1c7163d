"""The sink's options: their schema with every default, the URL checks, and pika's connection parameters from them."""

from __future__ import annotations

import socket
import urllib.parse
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from voluptuous import All, Any as AnyOf, Coerce, Invalid, Length, Optional as Opt, Range, Required, Schema

from sinks.rabbitmq.compat import INSTALL_HINT, pika
from sinks.rabbitmq.nodes import Node, node_address
from sinks.redact import redact
from sinks.spool.options import SPOOL_KEY, SPOOL_OPTIONS
from sinks.validation import SECONDS, TIMEOUT

DEFAULT_URL = "amqp://guest:guest@localhost:5672/%2F"
#: ``{sink}`` and ``{host}`` stand for the sink's name and the host's name.
DEFAULT_CONNECTION_NAME = "tornado-ingest {sink}@{host}"
DEFAULT_HEARTBEAT = 30


def amqp_url(value: Any) -> str:
    """An ``amqp://`` or ``amqps://`` URL that pika can read."""
    if pika is None:
        raise Invalid(INSTALL_HINT)
    if not isinstance(value, str) or urllib.parse.urlsplit(value).scheme not in ("amqp", "amqps"):
        raise Invalid("expected an amqp:// or amqps:// URL")
    userinfo = value.partition("://")[2].rpartition("@")[0]
    if any(character in userinfo.partition(":")[2] for character in "#?/"):
        # A URL parser reads these as the start of a path, query or fragment: pika's own message would
        # then quote a piece of the password as a host or a port.
        raise Invalid(
            "not a usable AMQP URL (%s): the password holds # ? or /; write them percent-encoded (%%23 %%3F %%2F)"
            % redact(value)
        )
    try:
        pika.URLParameters(value)
    except Exception as exc:
        raise Invalid(redact("not a usable AMQP URL (%s): %s" % (value, exc), _passwords_in(value))) from None
    return value


def amqp_urls(value: Any) -> List[str]:
    """One AMQP URL, or a list of them (the nodes of one cluster, the preferred first): always a list."""
    if not isinstance(value, list):
        return [amqp_url(value)]
    if not value:
        raise Invalid("expected an amqp:// URL or a list of them")
    urls = []
    for index, url in enumerate(value):
        try:
            urls.append(amqp_url(url))
        except Invalid as exc:
            raise Invalid(exc.error_message, path=[index]) from None
    return urls


def _passwords_in(url: str) -> Tuple[str, ...]:
    """The URL's password as written and as pika reads it (percent-decoded), to mask either in a message."""
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:
        return ()
    return (password, urllib.parse.unquote(password)) if password else ()


class _SchemaThenResolve(Schema):
    """A schema whose result is then completed by ``resolve(raw, checked)``: for a default that hangs on
    another option. The keys stay a plain mapping, so an unknown key still gets its "did you mean"."""

    def __init__(self, schema: Dict[Any, Any], resolve: Callable[[Any, Dict[str, Any]], Dict[str, Any]]) -> None:
        super().__init__(schema)
        self.resolve = resolve

    def __call__(self, data: Any) -> Any:
        return self.resolve(data, super().__call__(data))


def _heartbeat_from_url(raw: Mapping[str, Any], options: Dict[str, Any]) -> Dict[str, Any]:
    """A ``heartbeat`` left out of the options is the (first) URL's ``?heartbeat=``, where it has one.

    So the explicit option wins over the URL and the URL over the schema's default.
    """
    if "heartbeat" not in raw:
        in_url = heartbeat_in_url(options["url"][0])
        if in_url is not None:
            options["heartbeat"] = in_url
    return options


def heartbeat_in_url(url: str) -> Optional[int]:
    """The heartbeat a ``?heartbeat=`` of the URL asks for, as pika reads it; None without one."""
    if "heartbeat" not in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query):
        return None
    return pika.URLParameters(url).heartbeat


_name = All(str, Length(min=1, max=255), msg="expected a name of 1 to 255 characters")
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
TOPOLOGY_SCHEMA = Schema({Opt("exchanges", default=[]): [EXCHANGE_SCHEMA], Opt("queues", default=[]): [QUEUE_SCHEMA]})

OPTIONS = _SchemaThenResolve(
    {
        Opt("url", default=DEFAULT_URL): amqp_urls,
        Opt("exchange", default=""): All(str, Length(max=255)),
        Opt("declare", default={}): TOPOLOGY_SCHEMA,
        Opt("confirm_timeout", default=10.0): TIMEOUT,
        Opt("max_unconfirmed", default=10000): All(Coerce(int), Range(min=1), msg="expected a positive number"),
        Opt("heartbeat", default=DEFAULT_HEARTBEAT): All(
            Coerce(int), Range(min=0, max=65535), msg="expected seconds from 0 to 65535"
        ),
        Opt("connect_timeout", default=5.0): TIMEOUT,
        Opt("reconnect_delay", default=0.5): SECONDS,
        Opt("reconnect_max_delay", default=30.0): SECONDS,
        Opt("connection_name", default=DEFAULT_CONNECTION_NAME): _name,
        Opt("failback_after", default=300.0): SECONDS,
        SPOOL_KEY: SPOOL_OPTIONS,
    },
    resolve=_heartbeat_from_url,
)


def connection_name(template: str, sink_name: str) -> str:
    """The name the broker shows for the connection: ``{sink}`` and ``{host}`` filled in."""
    return template.replace("{sink}", sink_name).replace("{host}", socket.gethostname())


def connection_nodes(sink_name: str, options: Mapping[str, Any]) -> List[Node]:
    """The nodes of checked ``options["url"]``, in their order, each with its pika parameters."""
    return [
        Node(connection_parameters(sink_name, options, url), redact(url), node_address(url)) for url in options["url"]
    ]


def connection_parameters(sink_name: str, options: Mapping[str, Any], url: str) -> Any:
    """pika's ``URLParameters`` for one node: one attempt at a time, the sink retries with its backoff."""
    parameters = pika.URLParameters(url)
    parameters.heartbeat = options["heartbeat"]
    parameters.socket_timeout = options["connect_timeout"]
    parameters.stack_timeout = options["connect_timeout"]
    parameters.connection_attempts = 1
    parameters.retry_delay = 0
    parameters.client_properties = {"connection_name": connection_name(options["connection_name"], sink_name)}
    return parameters
