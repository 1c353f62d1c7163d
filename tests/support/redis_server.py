"""The Redis the idempotency tests share answers through (``REDIS_URL``, else 127.0.0.1:6379)."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Optional, Tuple

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_address(url: str = REDIS_URL) -> Tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "localhost", parts.port or 6379


def through(proxy: Any, url: str = REDIS_URL) -> str:
    """The same Redis URL (password, database) reached through a ``TcpProxy``."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = "%s:%d" % (proxy.host, proxy.port)
    return urllib.parse.urlunsplit(parts._replace(netloc="%s@%s" % (userinfo, netloc) if userinfo else netloc))


def redis_unreachable_reason(url: str = REDIS_URL) -> Optional[str]:
    """None if Redis answers a PING, else why not."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed (pip install 'tornado-ingest[redis]')"
    try:
        client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        client.ping()
        client.close()
        return None
    except Exception as exc:  # any failure means: no Redis to test against
        return "Redis at %s is not reachable: %r" % (redis_address(url), exc)


def reachable_redis(url: str = REDIS_URL) -> Any:
    """A blocking client of the test Redis; the test skips without one (fails with CI=true)."""
    from tests.support import skip_or_fail

    reason = redis_unreachable_reason(url)
    if reason is not None:
        skip_or_fail(reason)
    import redis

    return redis.Redis.from_url(url, decode_responses=True)
