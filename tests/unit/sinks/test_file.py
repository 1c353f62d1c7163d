"""The file sink: whole lines, in order, never torn; disk trouble is a SinkUnavailable."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from sinks.base import Record, SinkUnavailable
from sinks.file import FileSink


def record(n: int, size: int = 10) -> Record:
    return Record(json.dumps({"n": n, "pad": "x" * size}).encode(), dataset="d", msgid="m%d" % n)


def lines_of(path) -> list:
    with open(path, "rb") as stream:
        return [json.loads(line) for line in stream.read().split(b"\n") if line]


@pytest.fixture
def make_sink(io_loop, tmp_path):
    sinks = []

    async def make(**options):
        options.setdefault("directory", str(tmp_path / "out"))
        sink = FileSink.from_options("local", options)
        await sink.start()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        io_loop.run_sync(sink.close)


@pytest.mark.gen_test
async def test_appends_one_json_line_per_record(make_sink, tmp_path):
    sink = await make_sink()
    await sink.send("events", record(1))
    await sink.send("events", record(2))
    assert [line["n"] for line in lines_of(tmp_path / "out" / "events.jsonl")] == [1, 2]


@pytest.mark.gen_test
async def test_concurrent_sends_never_interleave(make_sink, tmp_path):
    sink = await make_sink()
    # Large lines (above the pipe-buffer size) are where unsynchronised writers tear.
    await asyncio.gather(*(sink.send("many", record(n, size=70_000 if n % 10 == 0 else 200)) for n in range(400)))
    lines = lines_of(tmp_path / "out" / "many.jsonl")
    assert sorted(line["n"] for line in lines) == list(range(400))


@pytest.mark.gen_test
async def test_two_sinks_on_one_file_never_interleave(make_sink, tmp_path):
    """Two writers (as two processes would be) share the file through flock."""
    first, second = await make_sink(), await make_sink()
    await asyncio.gather(*(sink.send("shared", record(n, size=50_000)) for n in range(100) for sink in (first, second)))
    assert len(lines_of(tmp_path / "out" / "shared.jsonl")) == 200


@pytest.mark.gen_test
async def test_fsync_option(make_sink, tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    sink = await make_sink(fsync=True)
    await sink.send("durable", record(1))
    assert synced, "fsync: true must sync before send returns"
    plain = await make_sink(directory=str(tmp_path / "plain"))
    synced.clear()
    await plain.send("fast", record(1))
    assert not synced


@pytest.mark.gen_test
async def test_creates_the_directory(make_sink, tmp_path):
    sink = await make_sink(directory=str(tmp_path / "a" / "b"))
    await sink.send("t", record(1))
    assert (tmp_path / "a" / "b" / "t.jsonl").exists()
    assert sink.health().up


@pytest.mark.gen_test
async def test_write_failure_is_unavailable_and_heals(make_sink, tmp_path):
    sink = await make_sink()
    target = tmp_path / "out" / "blocked.jsonl"
    target.mkdir()  # a directory where the file should be: open() fails for root too
    with pytest.raises(SinkUnavailable) as caught:
        await sink.send("blocked", record(1))
    assert "EISDIR" in str(caught.value) and "blocked.jsonl" in str(caught.value)
    assert sink.health().up  # one destination's trouble: the sink and its other destinations go on
    await sink.send("other", record(9))
    target.rmdir()
    await sink.send("blocked", record(2))
    assert sink.health().up
    assert [line["n"] for line in lines_of(target)] == [2]


@pytest.mark.gen_test(timeout=15)
async def test_a_directory_that_takes_no_write_is_an_outage_and_its_return_is_found_without_traffic(
    make_sink, tmp_path
):
    directory = tmp_path / "out"
    sink = await make_sink()
    await sink.send("events", record(1))
    (directory / "events.jsonl").unlink()
    directory.rmdir()
    directory.write_text("a file where the directory was")  # every write fails, for root too
    with pytest.raises(SinkUnavailable):
        await sink.send("events", record(2))
    assert not sink.health().up
    directory.unlink()
    for _ in range(50):  # the writer probes the directory once a second while it is down
        if sink.health().up:
            break
        await asyncio.sleep(0.1)
    assert sink.health().up, sink.health()
    await sink.send("events", record(3))


@pytest.mark.gen_test
async def test_symlinked_destination_is_refused(make_sink, tmp_path):
    sink = await make_sink()
    outside = tmp_path / "outside.txt"
    outside.write_text("")
    os.symlink(outside, tmp_path / "out" / "evil.jsonl")
    with pytest.raises(SinkUnavailable) as caught:
        await sink.send("evil", record(1))
    assert "symbolic link" in str(caught.value)
    assert outside.read_text() == ""
    assert sink.health().up  # a refused destination is not an outage


@pytest.mark.gen_test
async def test_a_rotated_file_is_reopened(make_sink, tmp_path):
    sink = await make_sink()
    path = tmp_path / "out" / "rot.jsonl"
    await sink.send("rot", record(1))
    os.rename(path, tmp_path / "out" / "rot.jsonl.1")
    await sink.send("rot", record(2))
    assert [line["n"] for line in lines_of(path)] == [2]
    assert [line["n"] for line in lines_of(tmp_path / "out" / "rot.jsonl.1")] == [1]


@pytest.mark.gen_test
async def test_a_failed_write_leaves_no_partial_line(make_sink, tmp_path, monkeypatch):
    sink = await make_sink()
    path = tmp_path / "out" / "full.jsonl"
    await sink.send("full", record(1))
    real_write = os.write

    def disk_fills_up(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_fills_up)
    with pytest.raises(SinkUnavailable) as caught:
        await sink.send("full", record(2, size=5000))
    assert "ENOSPC" in str(caught.value)
    monkeypatch.setattr(os, "write", real_write)
    await sink.send("full", record(3))
    assert [line["n"] for line in lines_of(path)] == [1, 3]


@pytest.mark.gen_test
async def test_close_writes_what_was_accepted(make_sink, tmp_path):
    sink = await make_sink()
    pending = [asyncio.ensure_future(sink.send("closing", record(n))) for n in range(50)]
    await asyncio.sleep(0)
    await sink.close()
    await asyncio.gather(*pending)
    assert len(lines_of(tmp_path / "out" / "closing.jsonl")) == 50
    with pytest.raises(SinkUnavailable):
        await sink.send("closing", record(99))


@pytest.mark.parametrize("name", ["example", "a.b-c_d", "UPPER9"])
def test_plain_destinations(name):
    FileSink.check_destination({}, name)


@pytest.mark.parametrize("name", ["../x", "a/b", "/etc/passwd", "..", ".", "with space", "nul\x00", "ünïcode", ""])
def test_destinations_that_could_escape_are_refused(name):
    with pytest.raises(ValueError):
        FileSink.check_destination({}, name)
