"""Outages: the file sink's disk full or read-only is a 503 and heals; /ready tells load balancers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import pytest

from sinks.base import SinkUnavailable
from tests.support import skip_or_fail
from tests.support.data_in import envelope_of, ingest_request


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs: a real disk that fills up (needs root to mount)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        skip_or_fail("cannot mount a tmpfs here (needs root): %s" % result.stderr.strip())
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def config_document(config_document, small_disk):
    config_document["sinks"]["disk"] = {"type": "file", "directory": str(small_disk / "data")}
    config_document["datasets"]["disk"] = {"sink": "disk", "entry_topic": "disk"}
    return config_document


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.gen_test(timeout=30)
async def test_disk_full_is_503_every_200_is_on_disk_and_it_heals(post, app, small_disk, http_client, base_url, health):
    accepted = []
    refused = 0
    for n in range(400):
        msgid = "m-%d-%s" % (n, uuid.uuid4())
        response = await post("/v2/data/in/disk", ingest_request({"pad": "x" * 1000}, msgid=msgid))
        if response.code == 200:
            accepted.append(msgid)
        else:
            assert response.code == 503, response.body
            assert response.headers["Retry-After"] == "7"
            assert envelope_of(response)["error"]["code"] == "SINK_UNAVAILABLE"
            refused += 1
    assert accepted and refused, "256 KiB must fill up within 400 KiB of records"
    path = small_disk / "data" / "disk.jsonl"
    assert [record["msgid"] for record in lines(path)] == accepted  # whole lines, nothing torn, nothing lost
    assert path.read_bytes().endswith(b"\n")
    ready = await http_client.fetch(base_url + "/ready", raise_error=False)
    assert ready.code == 503 and "disk" in envelope_of(ready)["error"]["message"]
    result = await health()
    assert result["status"] == "degraded" and "ENOSPC" in result["sinks"]["disk"]["error"]

    path.unlink()  # the operator makes room; /ready comes back without a request (load balancers send none)
    for _ in range(30):
        if (await http_client.fetch(base_url + "/ready", raise_error=False)).code == 200:
            break
        await asyncio.sleep(0.1)
    assert (await http_client.fetch(base_url + "/ready", raise_error=False)).code == 200
    assert (await post("/v2/data/in/disk", ingest_request(msgid="after"))).code == 200
    assert (await http_client.fetch(base_url + "/ready")).code == 200
    assert [record["msgid"] for record in lines(path)] == ["after"]


@pytest.mark.gen_test(timeout=30)
async def test_read_only_directory_is_503_and_heals(post, app, small_disk, http_client, base_url, health):
    assert (await post("/v2/data/in/disk", ingest_request(msgid="before"))).code == 200
    directory = small_disk / "data"
    # A read-only file system laid over the sink's directory (remounting is refused while a file is open).
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", str(directory)], check=True)
    try:
        response = await post("/v2/data/in/disk", ingest_request(msgid="during"))
        assert response.code == 503 and envelope_of(response)["error"]["code"] == "SINK_UNAVAILABLE"
        assert (await health())["sinks"]["disk"]["state"] == "down"
        assert (await http_client.fetch(base_url + "/ready", raise_error=False)).code == 503
    finally:
        subprocess.run(["umount", str(directory)], check=True)
    assert (await post("/v2/data/in/disk", ingest_request(msgid="after"))).code == 200
    assert [record["msgid"] for record in lines(small_disk / "data" / "disk.jsonl")] == ["before", "after"]


@pytest.mark.gen_test
async def test_ready_is_503_while_draining(app, http_client, base_url):
    assert (await http_client.fetch(base_url + "/ready")).code == 200
    app.context.drain.draining = True
    response = await http_client.fetch(base_url + "/ready", raise_error=False)
    envelope = envelope_of(response)
    assert response.code == 503 and envelope["id"] == "api.ready" and envelope["error"]["code"] == "NOT_READY"
    assert "draining" in envelope["error"]["message"]


@pytest.mark.gen_test
async def test_ready_ignores_a_sink_no_dataset_needs(app, memory_sink, http_client, base_url):
    app.context.config.datasets["events"].entry_topic = None
    app.context.config.datasets["custom"].entry_topic = None
    memory_sink.failure = SinkUnavailable("down")
    assert (await http_client.fetch(base_url + "/ready")).code == 200
    app.context.config.datasets["custom"].entry_topic = "custom"
    assert (await http_client.fetch(base_url + "/ready", raise_error=False)).code == 503
