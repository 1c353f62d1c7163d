"""The auth section of the config: each mistake is one line naming the key path."""

from __future__ import annotations

import pytest

from tornado_ingest.config import ConfigError, parse_config


@pytest.mark.parametrize(
    "keys, expected",
    [
        ([{"name": "a", "sha256": "abc"}], "auth.keys[0].sha256: expected the 64 hex digits"),
        ([{"name": "a"}], "auth.keys[0]: give exactly one of 'sha256'"),
        ([{"name": "a", "sha256": "0" * 64, "env": "X"}], "auth.keys[0]: give exactly one"),
        (
            [{"name": "a", "env": "SURELY_UNSET_KEY_VAR"}],
            "auth.keys[0].env: environment variable SURELY_UNSET_KEY_VAR is not set",
        ),
        (
            [{"name": "a", "sha256": "0" * 64, "datasets": ["evnets"]}],
            "auth.keys[0].datasets: no dataset named 'evnets' (did you mean 'events'?)",
        ),
        (
            [{"name": "a", "sha256": "0" * 64}, {"name": "a", "sha256": "1" * 64}],
            "auth.keys[1].name: another key is named 'a'",
        ),
        (
            [{"name": "a", "sha256": "0" * 64, "dataset": ["x"]}],
            "auth.keys[0].dataset: unknown key (did you mean 'datasets'?)",
        ),
    ],
)
def test_auth_config_errors(config_document, keys, expected):
    config_document["auth"] = {"keys": keys}
    with pytest.raises(ConfigError) as caught:
        parse_config(config_document)
    assert expected in str(caught.value)
