"""The strict JSON parse at msgspec's speed, for the bodies where msgspec gives the same answer.

msgspec parses a batch four times faster than the standard library with the
strict parser's hooks, keeps integers past 64 bits exact (orjson turns them
into floats) and refuses what the contract refuses: NaN, Infinity, a BOM, lone
surrogates, control characters in strings, invalid UTF-8. One answer differs:
of duplicate keys it keeps the last, where the contract says 400. That is cheap
to rule out on the bytes: every member has one colon outside strings, and in a
body without a ``\\u`` escape the colons inside strings are the same in the
body and in msgspec's writing of the document (it never escapes a colon). A
dropped duplicate takes at least its own colon with it, so equal counts mean
none was dropped.

Any refusal or doubt sends the body to the strict parser, which gives the answer
and the message: the fast path only ever says "the same document, sooner". The
writing it checks with is not thrown away: ``data`` is written on its own, and
the record carries those bytes as they are (``Parsed.data_json``).
``tests/unit/test_fast_json.py`` holds the two equal. Bodies written with
``\\u`` escapes (Python's ``json.dumps`` default for non-ASCII text) take the
strict path: correct, not faster.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

msgspec: Any
try:
    import msgspec
except ImportError:  # the plain install: the strict parser does it all
    msgspec = None

if msgspec is not None:
    _decode = msgspec.json.Decoder().decode
    _encode = msgspec.json.Encoder().encode


class Parsed(NamedTuple):
    """A body read: its document, and its ``data`` written back as compact JSON while it was checked (None
    where there was none): the record reuses those bytes instead of writing the events a second time."""

    document: Any
    data_json: Optional[bytes] = None


def parse(body: bytes, colons: Optional[int] = None) -> Optional[Parsed]:
    """What the strict parser would return, or None: then the strict parser decides.

    ``colons``: ``body.count(b":")`` when the caller has it already (it scans the body for its depth anyway).
    """
    if msgspec is None or (b"\\" in body and b"\\u" in body):
        return None
    try:
        document = _decode(body)
        data_json, written_colons = _write_back(document)
    except (msgspec.MsgspecError, ValueError, RecursionError, OverflowError):  # invalid UTF-8 is a ValueError
        return None
    if written_colons != (body.count(b":") if colons is None else colons):
        return None  # a duplicate key was dropped
    return Parsed(document, data_json)


def _write_back(document: Any) -> Tuple[Optional[bytes], int]:
    """The document's ``data`` written as JSON (None without one), and the colons in the whole document written."""
    if type(document) is dict and "data" in document:
        data_json = _encode(document["data"])
        rest = _encode({key: value for key, value in document.items() if key != "data"})
        return data_json, data_json.count(b":") + rest.count(b":") + 1  # + the colon after "data"
    return None, _encode(document).count(b":")
