"""The OpenAPI document of the contract (``openapi.yaml`` beside this module), served as JSON."""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Dict

import yaml

from tornado_ingest import __version__

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.yaml")


@functools.lru_cache(maxsize=1)
def document() -> Dict[str, Any]:
    """The document, with this version filled in (read once)."""
    with open(SOURCE, encoding="utf-8") as stream:
        spec = yaml.safe_load(stream)
    spec["info"]["version"] = __version__
    return spec


@functools.lru_cache(maxsize=1)
def as_json() -> bytes:
    return json.dumps(document(), indent=1).encode("utf-8")
