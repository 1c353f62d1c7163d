"""``--target URL``: another running endpoint of this API, measured beside the service in the same run.

The bench starts nothing for it: it posts the same bodies to
``<URL>/v2/data/in/<dataset>`` (a path in URL is kept as a prefix) and counts
every answer >= 400 as an error, as for its own servers.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import List, Optional, Tuple

NAME = "target"


def ingest_url(base: str, dataset: str) -> str:
    return "%s/v2/data/in/%s" % (base.rstrip("/"), dataset)


def parse_header(text: str) -> str:
    """A ``--target-header`` value, checked to be ``Name: value``."""
    name, sep, _ = text.partition(":")
    if not sep or not name.strip() or " " in name.strip():
        raise ValueError("expected 'Name: value', got %r" % text)
    return text


def probe(url: str, body_path: str, headers: List[str]) -> Tuple[Optional[int], str]:
    """POST the single-event body once: (status, note); status None when nothing answered."""
    with open(body_path, "rb") as handle:
        body = handle.read()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for line in headers:
        name, _, value = line.partition(":")
        request.add_header(name.strip(), value.strip())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, "answered %d to a probe" % response.status
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:200].decode("utf-8", "replace")
        return exc.code, "answered %d to a probe (%s): every request it answers so counts as an error" % (
            exc.code,
            " ".join(detail.split()),
        )
    except (urllib.error.URLError, OSError) as exc:
        return None, "unreachable: %s" % (getattr(exc, "reason", None) or exc)
