"""From raw request bytes to a validated data-in request, or an ``IngestError``.

The checks run in the contract's order — content type and encoding, then JSON,
then the request rules — and each failure names what was wrong, so a client
can fix its request from the message alone.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any, Callable, Dict, List, Optional, Set, Union

from tornado.httputil import HTTPHeaders
from voluptuous import ALLOW_EXTRA, All, Invalid, Length, MultipleInvalid, Required, Schema

from sinks.validation import describe_invalid, field_path
from tornado_ingest import fast_json
from tornado_ingest.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

JSON_MEDIA_TYPE = "application/json"
GZIP_ENCODINGS = ("gzip", "x-gzip")
IDENTITY_ENCODINGS = ("", "identity")


# -- framing, content type and encoding -----------------------------------------

_DIGITS = re.compile(r"^[0-9]+$")
_LIST_SEPARATOR = re.compile(r",[ \t]*")


def declared_length(headers: HTTPHeaders) -> Optional[int]:
    """The body length the request declares (None: none, or chunked).

    A framing Tornado would refuse once the handler has answered is refused
    here first, so its answer is an envelope: ``Content-Length`` values that
    differ or are not ASCII digits, ``Transfer-Encoding`` other than chunked,
    or both headers at once (the stuff of request smuggling).
    """
    declared = headers.get("Content-Length")
    encoding = headers.get("Transfer-Encoding")
    if encoding is not None:
        if declared is not None:
            raise InvalidInput("the request has both Transfer-Encoding and Content-Length: send one of them")
        if encoding.lower() != "chunked":
            raise InvalidInput("Transfer-Encoding %r is not supported: send chunked, or a Content-Length" % encoding)
        return None
    if declared is None:
        return None
    values = set(_LIST_SEPARATOR.split(declared))
    if len(values) != 1 or not _DIGITS.match(next(iter(values))):
        raise InvalidInput("Content-Length %r is not one number of bytes" % declared)
    return int(values.pop())


def check_content_type(content_type: Optional[str]) -> None:
    """A missing Content-Type is JSON; a present one must be JSON in UTF-8."""
    if content_type is None or content_type == JSON_MEDIA_TYPE:
        return
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != JSON_MEDIA_TYPE and not (media_type.endswith("+json") and "/" in media_type):
        raise UnsupportedMediaType(
            "Content-Type %r is not JSON: send the body with 'Content-Type: application/json'" % content_type
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("charset %r is not supported: send the body as UTF-8" % value.strip())


def is_gzipped(content_encoding: Optional[str]) -> bool:
    """True for a gzip body, False for identity; anything else is refused."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in GZIP_ENCODINGS:
        return True
    if encoding in IDENTITY_ENCODINGS:
        return False
    raise UnsupportedMediaType("Content-Encoding %r is not supported: send gzip or identity" % content_encoding)


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body (all its members), refusing it once it grows past ``limit``.

    Never more than ``limit + 1`` bytes are inflated, so a zip bomb costs nothing.
    """
    parts: List[bytes] = []
    size = 0
    remaining = body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(remaining, limit - size + 1)
            if not inflater.unconsumed_tail:
                part += inflater.flush()
        except zlib.error as exc:
            raise InvalidInput("body is not valid gzip: %s" % exc) from None
        size += len(part)
        if size > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge("decompressed body is larger than %d bytes" % limit)
        if not inflater.eof:
            raise InvalidInput("body is not valid gzip: it ends before the gzip stream does")
        parts.append(part)
        remaining = inflater.unused_data
        if not remaining:
            return b"".join(parts)


# -- JSON ---------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError("%s is not valid JSON" % name)


_INFINITY = float("inf")


def _finite_float(text: str) -> float:
    value = float(text)
    if value == _INFINITY or value == -_INFINITY:
        raise ValueError(
            "number %s is out of range (JSON has no Infinity)" % (text if len(text) < 30 else text[:27] + "...")
        )
    return value


def _object_without_duplicates(pairs: List[Any]) -> Dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: Set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError("duplicate key %r in an object" % key)
            seen.add(key)
    return document


def parse_json(body: bytes, max_depth: int) -> Any:
    """Strict JSON: UTF-8 only, no NaN or Infinity, no duplicate keys, nested at most ``max_depth``."""
    return parse_body(body, max_depth).document


def parse_body(body: bytes, max_depth: int) -> fast_json.Parsed:
    """``parse_json``, keeping what the fast path wrote on the way (its ``data_json``, for the record)."""
    structure = body.translate(None, _NOT_BRACKET_OR_COLON)  # one pass: the colons, and the nesting below
    parsed = fast_json.parse(body, colons=structure.count(b":"))
    if parsed is None:
        parsed = fast_json.Parsed(_parse_strictly(body, max_depth))
    # translate, not replace: replace(b":", b"") copies between colons, ten times slower on a batch's structure
    if nested_deeper_than(body, max_depth, brackets=structure.translate(None, b":")):
        raise InvalidInput("body is nested too deep (at most %d levels)" % max_depth)
    return parsed


def _parse_strictly(body: bytes, max_depth: int) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("body is not valid UTF-8 (byte %d)" % exc.start) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        document = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_object_without_duplicates,
        )
    except RecursionError:
        raise InvalidInput("body is nested too deep (at most %d levels)" % max_depth) from None
    except ValueError as exc:
        raise InvalidInput("body is not valid JSON: %s" % exc) from None
    return document


_NOT_BRACKET = bytes(byte for byte in range(256) if byte not in b"{}[]")
_NOT_BRACKET_OR_COLON = bytes(byte for byte in range(256) if byte not in b"{}[]:")
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'{}[]"')
_INNERMOST_PAIR = re.compile(rb"\{\}|\[\]")


def nested_deeper_than(body: bytes, max_depth: int, brackets: Optional[bytes] = None) -> bool:
    """Whether a (valid) JSON text nests objects/arrays deeper than ``max_depth``.

    Done on the bytes at C speed, by peeling the innermost bracket pairs once
    per level. First over every bracket, strings included: balanced brackets
    in strings can only add levels, so emptying within ``max_depth`` settles
    it. Otherwise, exactly: escapes dropped (every quote left delimits a
    string), strings dropped, then peeled. ``brackets``: the body's brackets, when the caller has them.
    """
    if brackets is None:
        brackets = body.translate(None, _NOT_BRACKET)
    if len(brackets) <= 2 * max_depth or _peels_within(brackets, max_depth):
        return False
    skeleton = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    return not _peels_within(b"".join(skeleton.split(b'"')[::2]), max_depth)  # even pieces lie outside strings


def _peels_within(brackets: bytes, levels: int) -> bool:
    """Whether balanced brackets nest at most ``levels`` deep.

    A round of two plain replaces peels one level or two (an array left empty
    by the ``{}`` pass goes in the ``[]`` pass), several times faster than the
    regular expression that peels exactly one; only an answer the rounds leave
    open is settled level by level.
    """
    rounds, left = 0, brackets
    while left and rounds < levels:
        left = left.replace(b"{}", b"").replace(b"[]", b"")
        rounds += 1
    if left:
        return False  # ``levels`` rounds peeled at least ``levels`` levels
    if 2 * rounds <= levels:
        return True
    for _ in range(levels):
        if not brackets:
            return True
        brackets = _INNERMOST_PAIR.sub(b"", brackets)
    return not brackets


# -- the request rules --------------------------------------------------------


def _event_data(value: Any) -> Union[Dict[str, Any], List[Dict[str, Any]]]:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        if not value:
            raise Invalid("an empty batch: send at least one event")
        for index, event in enumerate(value):
            if not isinstance(event, dict):
                raise Invalid("expected an object, got %s" % json_type(event), path=[index])
        return value
    raise Invalid("expected an object or an array of objects, got %s" % json_type(value))


def _literal(expected: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value != expected:
            raise Invalid("must be %r" % expected)
        return value

    return check


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("expected a string, got %s" % json_type(value))
    return value


REQUEST_SCHEMA = Schema(
    {
        Required("id"): _literal("api.data.in"),
        Required("ver"): _string,
        Required("ts"): _string,
        Required("params"): Schema(
            {Required("msgid"): All(_string, Length(min=1, msg="must not be empty"))}, extra=ALLOW_EXTRA
        ),
        Required("data"): _event_data,
    },
    extra=ALLOW_EXTRA,
)


_FIELD_ORDER = {"id": 0, "ver": 1, "ts": 2, "params": 3, "data": 4}


def follows_the_rules(document: Any) -> bool:
    """The request rules written out plainly: the fast path for valid requests.

    It accepts exactly what ``REQUEST_SCHEMA`` accepts (a property test holds
    the two together); the schema still answers every refusal, naming fields.
    """
    if type(document) is not dict or document.get("id") != "api.data.in":
        return False
    if type(document.get("ver")) is not str or type(document.get("ts")) is not str:
        return False
    params = document.get("params")
    if type(params) is not dict or type(params.get("msgid")) is not str or not params["msgid"]:
        return False
    data = document.get("data")
    if type(data) is dict:
        return True
    return type(data) is list and bool(data) and all(type(event) is dict for event in data)


def validate_request(document: Any) -> Dict[str, Any]:
    """Check the data-in request rules; the error message names each bad field."""
    if follows_the_rules(document):
        return document
    if not isinstance(document, dict):
        raise InvalidInput("body must be a JSON object, got %s" % json_type(document))
    try:
        return REQUEST_SCHEMA(document)
    except MultipleInvalid as exc:
        problems = sorted(exc.errors, key=lambda error: _FIELD_ORDER.get(str(error.path[0]) if error.path else "", 9))
        raise InvalidInput(
            "; ".join(
                "%s: %s" % (field_path(error.path), describe_invalid(error, mapping="an object")) for error in problems
            )
        ) from None


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def request_msgid(document: Any) -> Optional[str]:
    """The request's ``params.msgid`` when it has a usable one (echoed even on errors, where it can be)."""
    if isinstance(document, dict):
        params = document.get("params")
        if isinstance(params, dict):
            msgid = params.get("msgid")
            if isinstance(msgid, str) and msgid:
                return msgid
    return None
