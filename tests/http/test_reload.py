"""Reloads in one process: datasets, keys, limits and sinks change for the next request; nothing in flight fails."""

from __future__ import annotations

import asyncio
import copy
import gc

import pytest

from tests.support.data_in import ingest_request
from tornado_ingest.config import ConfigError, parse_config
from tornado_ingest.reload import Reloader
from tornado_ingest.service import Service


@pytest.fixture
def config_document(config_document):
    config_document["sinks"]["slow"] = {"type": "memory", "delay": 0.5}
    config_document["datasets"]["slow"] = {"sink": "slow", "entry_topic": "slow"}
    return config_document


@pytest.fixture
def reload_with(app):
    """``await reload_with(document)``: reload the app's service from a config document (or an exception)."""

    async def reload(document):
        def load():
            if isinstance(document, Exception):
                raise document
            return parse_config(copy.deepcopy(document), source="reloaded")

        return await Reloader(app.service, load).reload()

    return reload


async def load_test(post, path, stop, outcomes):
    while not stop.is_set():
        outcomes.append((await post(path, ingest_request())).code)


@pytest.mark.gen_test(timeout=30)
async def test_a_dataset_added_under_load_is_routable_and_nothing_fails(post, app, reload_with, config_document):
    stop, outcomes = asyncio.Event(), []
    clients = [asyncio.ensure_future(load_test(post, "/v2/data/in/events", stop, outcomes)) for _ in range(4)]
    await asyncio.sleep(0.2)
    assert (await post("/v2/data/in/new", ingest_request())).code == 404
    document = copy.deepcopy(config_document)
    document["datasets"]["new"] = {"sink": "mem", "entry_topic": "new.raw"}
    assert await reload_with(document)
    assert (await post("/v2/data/in/new", ingest_request(msgid="n-1"))).code == 200
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*clients)
    assert outcomes and set(outcomes) == {200}, "a request failed during the reload"
    assert app.sinks["mem"] is app.sinks["mem"] and [d for d, r in app.sinks["mem"].records if r.msgid == "n-1"] == [
        "new.raw"
    ]


@pytest.mark.gen_test(timeout=30)
async def test_a_removed_dataset_still_answers_what_was_in_flight(post, app, reload_with, config_document):
    old_sink = app.sinks["slow"]
    in_flight = [asyncio.ensure_future(post("/v2/data/in/slow", ingest_request(msgid="f-%d" % i))) for i in range(5)]
    await asyncio.sleep(0.1)  # the records are with the slow sink (0.5 s)
    document = copy.deepcopy(config_document)
    del document["datasets"]["slow"], document["sinks"]["slow"]
    assert await reload_with(document)
    assert (await post("/v2/data/in/slow", ingest_request())).code == 404  # gone for the next request
    assert [response.code for response in await asyncio.gather(*in_flight)] == [200] * 5
    assert len(old_sink.records) == 5
    for _ in range(40):  # closed once its records in flight are answered
        if old_sink.closed:
            break
        await asyncio.sleep(0.05)
    assert old_sink.closed and "slow" not in app.sinks


@pytest.mark.gen_test(timeout=30)
async def test_a_sink_whose_options_change_is_replaced_without_loss(post, app, reload_with, config_document):
    old_sink = app.sinks["slow"]
    in_flight = [asyncio.ensure_future(post("/v2/data/in/slow", ingest_request(msgid="old-%d" % i))) for i in range(3)]
    await asyncio.sleep(0.1)
    document = copy.deepcopy(config_document)
    document["sinks"]["slow"]["delay"] = 0.01
    document["sinks"]["mem"]["max_inflight"] = 7  # a limit changes: the running sink stays
    mem = app.sinks["mem"]
    assert await reload_with(document)
    new_sink = app.sinks["slow"]
    assert new_sink is not old_sink and app.sinks["mem"] is mem
    assert app.context.router.gates["mem"].max_inflight == 7
    assert (await post("/v2/data/in/slow", ingest_request(msgid="new-1"))).code == 200
    assert [response.code for response in await asyncio.gather(*in_flight)] == [200] * 3
    assert sorted(r.msgid for _, r in old_sink.records) == ["old-0", "old-1", "old-2"]
    assert [r.msgid for _, r in new_sink.records] == ["new-1"]


@pytest.mark.gen_test
async def test_a_broken_config_keeps_the_one_in_force(post, app, reload_with, http_client, base_url, caplog):
    before = app.context
    assert not await reload_with(ConfigError("datasets.x.sink", "no sink named 'nope'"))
    assert app.context is before
    assert "config reload refused, the config in force stays: datasets.x.sink: no sink named 'nope'" in caplog.text
    assert (await post("/v2/data/in/events", ingest_request())).code == 200
    metrics = (await http_client.fetch(base_url + "/metrics")).body.decode()
    assert 'tornado_ingest_config_reloads_total{result="failure"} 1.0' in metrics


@pytest.mark.gen_test
async def test_listening_settings_stay_and_are_named(app, reload_with, config_document, caplog):
    document = copy.deepcopy(config_document)
    document["server"].update(port=4321, processes=3, retry_after=9)
    assert await reload_with(document)
    assert (app.context.settings.port, app.context.settings.processes) == (0, 1)
    assert app.context.settings.retry_after == 9  # a limit: in force for the next request
    assert "server.port cannot change without a restart: it stays 0 (the file says 4321)" in caplog.text
    assert "server.processes cannot change without a restart" in caplog.text


@pytest.mark.gen_test
async def test_new_keys_apply_to_the_next_request(post, reload_with, config_document, monkeypatch):
    monkeypatch.setenv("RELOAD_TEST_KEY", "k-2")
    document = copy.deepcopy(config_document)
    document["auth"] = {"keys": [{"name": "late", "env": "RELOAD_TEST_KEY"}]}
    assert (await post("/v2/data/in/events", ingest_request())).code == 200
    assert await reload_with(document)
    assert (await post("/v2/data/in/events", ingest_request())).code == 401
    keyed = {"Content-Type": "application/json", "X-API-Key": "k-2"}
    assert (await post("/v2/data/in/events", ingest_request(), headers=keyed)).code == 200


@pytest.mark.gen_test(timeout=30)
async def test_the_started_heap_is_frozen_thawed_by_a_reload_and_frozen_again_once_retired_sinks_close(
    app, reload_with, config_document
):
    service = Service(parse_config(copy.deepcopy(config_document)))
    service.manages_heap = True  # as the service's own process does (the tests' app does not)
    try:
        await service.start()
        assert gc.get_freeze_count() > 0, "the heap built at start is not frozen"
        await service.close()
        gc.unfreeze()
        app.service.manages_heap = True
        document = copy.deepcopy(config_document)
        document["sinks"]["slow"]["delay"] = 0.4  # changed options: the old sink is retired, then closed
        assert await reload_with(document)
        assert gc.get_freeze_count() == 0, "a reload must thaw the heap, or the old config is never collected"
        for _ in range(100):
            if gc.get_freeze_count() > 0:
                break
            await asyncio.sleep(0.05)
        assert gc.get_freeze_count() > 0, "the heap is not frozen again after the reload"
    finally:
        app.service.manages_heap = False
        gc.unfreeze()
