"""Optional API keys: who may write to which dataset.

Keys are kept only as SHA-256 digests (from the config, or hashed at start from
an environment variable) and compared in constant time. A client sends its key
as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. With no keys
configured the ingest endpoint is open, and the start-up log says so.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import FrozenSet, List, Optional

from tornado.httputil import HTTPHeaders

from tornado_ingest.errors import Forbidden, Unauthorized

ALL_DATASETS = "*"


def hash_key(key: str) -> str:
    """The hex SHA-256 digest of a key, as the config stores it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class ApiKey:
    __slots__ = ("name", "digest", "datasets")

    def __init__(self, name: str, sha256_hex: str, datasets: Optional[FrozenSet[str]]):
        self.name = name
        self.digest = bytes.fromhex(sha256_hex)
        self.datasets = datasets  # None: every dataset

    def may_write(self, dataset_id: str) -> bool:
        return self.datasets is None or dataset_id in self.datasets


class KeyRing:
    """The configured keys; ``authorize`` answers who is asking, or raises."""

    def __init__(self, keys: List[ApiKey]):
        self.keys = keys

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def authorize(self, headers: HTTPHeaders, dataset_id: str) -> Optional[str]:
        """The key's name; ``Unauthorized`` (401) or ``Forbidden`` (403) otherwise."""
        if not self.keys:
            return None
        found = self.identify(headers)
        if not found.may_write(dataset_id):
            raise Forbidden("API key %r may not write to dataset %r" % (found.name, dataset_id))
        return found.name

    def identify(self, headers: HTTPHeaders) -> ApiKey:
        """The configured key the request presents, whatever it may write to; ``Unauthorized`` (401) otherwise."""
        presented = presented_key(headers)
        if presented is None:
            raise Unauthorized()
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for key in self.keys:  # no early exit: every key is compared
            if hmac.compare_digest(digest, key.digest):
                found = key
        if found is None:
            raise Unauthorized("Unknown API key")
        return found


def presented_key(headers: HTTPHeaders) -> Optional[str]:
    authorization = headers.get("Authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    api_key = headers.get("X-API-Key")
    if api_key and api_key.strip():
        return api_key.strip()
    return None
