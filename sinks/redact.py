"""Secrets out of text: the one way a sink masks passwords in logs, errors and ``/health``."""

from __future__ import annotations

import re
from typing import Iterable

MASK = "***"

# user:password@ after a URL scheme, or at the start of a word (Kafka's bare "user:password@host:port").
# The password runs to the last "@" of the word, so an "@", "#", "?" or "/" written into it is masked too.
_USERINFO = re.compile(
    r"(?P<lead>[A-Za-z][A-Za-z0-9+.-]*://|^|(?<=[\s,'\"(\[]))(?P<user>[^\s/:@,'\"()\[\]]*):(?P<password>[^\s,'\"]*)@"
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL password and every given secret shown as ``***``; user names stay."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _USERINFO.sub(lambda match: "%s%s:%s@" % (match.group("lead"), match.group("user"), MASK), text)
