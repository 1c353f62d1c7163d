"""Retry-safe requests without a server: the digest, the in-process store's bounds, the settings' checks."""

from __future__ import annotations

import asyncio

import pytest

from tornado_ingest.config import ConfigError, parse_config
from tornado_ingest.idempotency import Idempotency, data_digest, store_key
from tornado_ingest.idempotency.memory_store import MemoryStore
from tornado_ingest.metrics import Metrics


def config_with(idempotency):
    return parse_config(
        {
            "sinks": {"m": {"type": "memory"}},
            "datasets": {"d": {"sink": "m", "entry_topic": "t", "idempotency": idempotency}},
        }
    )


def test_the_digest_is_of_the_data_however_it_was_written():
    assert data_digest({"a": 1, "b": [1, 2]}) == data_digest({"b": [1, 2], "a": 1})
    assert data_digest({"a": 1}) != data_digest({"a": 2}) != data_digest([{"a": 1}])
    assert data_digest({"text": "\ud800"}) == data_digest({"text": "\ud800"})  # a lone surrogate is no crash
    assert len(data_digest({})) == 64


def test_the_key_is_the_datasets_hashed_msgid():
    assert store_key("orders", "m-1") != store_key("audit", "m-1")
    assert len(store_key("orders", "x" * 100_000)) < 120


def test_settings_defaults_durations_and_errors():
    settings = config_with({"window": "24h"}).datasets["d"].idempotency
    assert (settings.window, settings.store, settings.max_keys, settings.wait) == (86400.0, "memory", 100_000, 15.0)
    assert config_with({"window": "90"}).datasets["d"].idempotency.window == 90
    assert config_with({"window": "15m"}).datasets["d"].idempotency.window == 900
    assert config_with({"window": 7.5}).datasets["d"].idempotency.window == 7.5
    errors = {
        "window: 0": ({"window": 0}, "datasets.d.idempotency.window: expected a duration"),
        "unit": ({"window": "2w"}, "datasets.d.idempotency.window: expected a duration"),
        "typo": ({"windw": 1}, "datasets.d.idempotency.windw: unknown key (did you mean 'window'?)"),
        "no url": ({"store": "redis"}, "datasets.d.idempotency.url: store: redis needs url"),
        "url without redis": ({"url": "redis://h/0"}, "datasets.d.idempotency.url: url is for store: redis"),
        "bad url": ({"store": "redis", "url": "http://h"}, "datasets.d.idempotency.url: expected a redis://"),
        "choice": ({"when_store_down": "ignore"}, "datasets.d.idempotency.when_store_down: expected accept or refuse"),
        "not a mapping": ("yes", "datasets.d.idempotency: expected a mapping"),
    }
    for name, (value, expected) in errors.items():
        with pytest.raises(ConfigError) as caught:
            config_with(value)
        assert str(caught.value).startswith(expected), (name, str(caught.value))


@pytest.mark.gen_test
async def test_the_memory_store_keeps_at_most_max_keys_forgetting_the_oldest_first():
    store = MemoryStore(max_keys=3)
    for n in range(5):
        assert await store.claim("k%d" % n, "digest", "token", 60) is None
        await store.answer("k%d" % n, "digest", "token", "answer-%d" % n, window=60)
    assert store.details() == {"keys": 3, "max_keys": 3, "evicted": 2}
    assert await store.claim("k4", "digest", "t2", 60) == ("digest", "answer-4")
    assert await store.claim("k0", "digest", "t2", 60) is None  # forgotten early: a retry is a new attempt


@pytest.mark.gen_test
async def test_the_memory_store_forgets_answers_after_their_window():
    store = MemoryStore(max_keys=10)
    await store.claim("k", "digest", "token", 60)
    await store.answer("k", "digest", "token", "answer", window=0.05)
    assert await store.claim("k", "digest", "other", 60) == ("digest", "answer")
    await asyncio.sleep(0.06)
    assert await store.claim("k", "digest", "other", 60) is None
    assert store.details()["keys"] == 0


@pytest.mark.gen_test
async def test_only_the_request_that_holds_a_key_settles_it():
    store = MemoryStore(max_keys=10)
    await store.claim("k", "digest", "mine", 60)
    await store.release("k", "digest", "someone-else")
    await store.answer("k", "digest", "someone-else", "theirs", window=60)
    assert await store.claim("k", "digest", "third", 60) == ("digest", None)  # still mine, in flight
    await store.release("k", "digest", "mine")
    assert await store.claim("k", "digest", "third", 60) is None


@pytest.mark.gen_test
async def test_datasets_without_the_setting_pass_straight_through():
    config = parse_config(
        {"sinks": {"m": {"type": "memory"}}, "datasets": {"plain": {"sink": "m", "entry_topic": "t"}}}
    )
    idempotency = Idempotency.build(config, Metrics())
    assert idempotency.gates == {} and idempotency.report(detailed=True) == {}
    async with idempotency.attempt(config.datasets["plain"], "m", {"a": 1}) as attempt:
        assert attempt.first_resmsgid is None
        attempt.answered("r")
