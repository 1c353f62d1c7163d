"""A destination's log on disk: appended, read back in order, delivered segments deleted, repaired at start-up."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sinks.base import Record
from sinks.spool import frames
from sinks.spool.lane import Lane, LaneBusy, directory_name
from sinks.spool.progress import SLOT_BYTES, Position, ProgressFile


def framed(n: int, size: int = 40) -> bytes:
    return frames.encode("orders", Record(b'{"n":%d,"pad":"%s"}' % (n, b"x" * size), "d", "m%d" % n), 1000 + n)


def numbers(read_records) -> list:
    return [int(read.entry.record.msgid[1:]) for read in read_records]


def read_all(log, max_records, max_bytes):
    records, damaged = log.read(max_records, max_bytes)
    assert damaged == 0
    return records


def open_lane(root, segment_bytes=300, **kwargs) -> Lane:
    lane = Lane(str(root), "bus", segment_bytes=segment_bytes, **kwargs)
    lane.take()
    return lane


def reopened(lane: Lane, segment_bytes=300) -> Lane:
    lane.close()
    again = open_lane(lane.root, segment_bytes)
    return again


def test_records_come_back_in_order_across_segments_and_delivered_segments_go(tmp_path):
    lane = open_lane(tmp_path)
    log = lane.log_for("orders")
    for n in range(0, 20, 4):
        log.append([framed(i) for i in range(n, n + 4)])
    segments = sorted(os.listdir(log.path))
    assert len([name for name in segments if name.endswith(".seg")]) >= 3
    first = read_all(log, 7, 1 << 20)
    assert numbers(first) == list(range(7))
    assert numbers(read_all(log, 100, 1 << 20)) == list(range(7, 20))
    assert read_all(log, 100, 1 << 20) == []

    size = log.size
    log.acknowledge(first[-1].end)
    log.sync_progress()
    freed = log.remove_delivered()
    assert 0 < freed < size and log.size == size - freed
    assert not log.drained
    last = read_all(log, 1, 1)  # nothing more to read, but the cursor is not at the end yet
    assert last == []


def test_a_restart_resumes_at_the_durable_cursor(tmp_path):
    lane = open_lane(tmp_path)
    log = lane.log_for("orders")
    log.append([framed(i) for i in range(10)])
    read = read_all(log, 4, 1 << 20)
    log.acknowledge(read[-1].end)
    log.sync_progress()

    lane = reopened(lane)
    [recovered] = lane.recover()
    assert (recovered.destination, recovered.records, recovered.first_written_ms) == ("orders", 6, 1004)
    log = lane.logs["orders"]
    assert numbers(read_all(log, 100, 1 << 20)) == list(range(4, 10))
    log.append([framed(10)])  # appends after a restart go to a new segment
    assert numbers(read_all(log, 100, 1 << 20)) == [10]


def test_a_drained_log_is_deleted_and_a_new_one_starts_fresh(tmp_path):
    lane = open_lane(tmp_path)
    log = lane.log_for("orders")
    log.append([framed(i) for i in range(10)])
    log.acknowledge(read_all(log, 100, 1 << 20)[-1].end)
    log.sync_progress()
    log.remove_delivered()
    assert log.drained
    assert lane.drop("orders") > 0
    assert not os.path.exists(log.path)
    log = lane.log_for("orders")
    log.append([framed(11)])
    assert numbers(read_all(log, 10, 1 << 20)) == [11]
    lane = reopened(lane)
    assert [found.records for found in lane.recover()] == [1]


def test_a_log_found_delivered_at_start_up_is_deleted(tmp_path):
    lane = open_lane(tmp_path)
    log = lane.log_for("orders")
    log.append([framed(i) for i in range(3)])
    log.acknowledge(read_all(log, 100, 1 << 20)[-1].end)
    log.sync_progress()  # the crash came before the segments were removed
    lane = reopened(lane)
    assert [found.records for found in lane.recover()] == [0]
    assert not os.path.exists(log.path)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_segment_cut_at_any_byte_loses_only_the_record_cut_and_says_so(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("cut")
    lane = open_lane(root, segment_bytes=1 << 20)
    log = lane.log_for("orders")
    records = [framed(i, size=data.draw(st.integers(0, 60))) for i in range(8)]
    log.append(records)
    path = log.segment_path(1)
    cut = data.draw(st.integers(min_value=1, max_value=os.path.getsize(path)))
    os.truncate(path, cut)

    lane = reopened(lane, segment_bytes=1 << 20)
    found = lane.recover()
    ends = [sum(map(len, records[: i + 1])) for i in range(len(records))]
    whole = [i for i, end in enumerate(ends) if end <= cut]
    torn = cut - (ends[whole[-1]] if whole else 0)
    assert sum(item.records for item in found) == len(whole)
    assert sum(item.torn_bytes for item in found) == torn
    if whole:
        assert numbers(read_all(lane.logs["orders"], 100, 1 << 20)) == whole
        assert os.path.getsize(path) == ends[whole[-1]]  # the torn tail is cut off
    quarantine = os.path.join(lane.path, "quarantine")
    assert bool(torn) == (os.path.isdir(quarantine) and any(name.endswith(".torn") for name in os.listdir(quarantine)))
    lane.close()


def test_a_flipped_byte_in_the_middle_moves_that_record_aside_and_keeps_the_rest(tmp_path, caplog):
    lane = open_lane(tmp_path, segment_bytes=1 << 20)
    log = lane.log_for("orders")
    records = [framed(i) for i in range(10)]
    log.append(records)
    path = log.segment_path(1)
    at = sum(map(len, records[:4])) + random.randrange(len(records[4]))
    with open(path, "r+b") as handle:
        handle.seek(at)
        byte = handle.read(1)
        handle.seek(at)
        handle.write(bytes([byte[0] ^ 0x5A]))

    lane = reopened(lane, segment_bytes=1 << 20)
    [found] = lane.recover()
    assert (found.records, found.damaged, found.torn_bytes) == (9, 1, 0)
    assert numbers(read_all(lane.logs["orders"], 100, 1 << 20)) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    [aside] = os.listdir(os.path.join(lane.path, "quarantine"))
    assert aside.endswith(".damaged")
    with open(os.path.join(lane.path, "quarantine", aside), "rb") as handle:
        assert len(handle.read()) == len(records[4])
    assert "moved aside" in caplog.text


def test_the_cursor_survives_a_torn_write_of_its_newest_slot(tmp_path):
    progress = ProgressFile(str(tmp_path))
    progress.write(Position(1, 100))
    progress.write(Position(2, 50))
    progress.sync()
    progress.close()
    newest = (2 % 2) * SLOT_BYTES  # the second write went to slot 0
    with open(progress.path, "r+b") as handle:
        handle.seek(newest + 10)
        handle.write(b"\xff\xff")
    assert ProgressFile(str(tmp_path)).load() == Position(1, 100)


def test_each_process_takes_its_own_lane_and_a_freed_one_is_taken_again(tmp_path):
    first, second = open_lane(tmp_path), open_lane(tmp_path)
    assert os.path.basename(first.path) == "lane-0" and os.path.basename(second.path) == "lane-1"
    first.close()
    third = open_lane(tmp_path)
    assert os.path.basename(third.path) == "lane-0"


def test_when_every_lane_is_held_the_spool_says_so(tmp_path, monkeypatch):
    from sinks.spool import lane as lane_module

    monkeypatch.setattr(lane_module, "MAX_LANES", 1)
    open_lane(tmp_path)
    with pytest.raises(LaneBusy):
        open_lane(tmp_path)


@pytest.mark.parametrize("name", ["orders", "a/b", "..", ".", "ключ", "x" * 255, ""])
def test_directory_names_stand_for_one_name_each_and_are_plain(name):
    made = directory_name(name)
    assert "/" not in made and made not in (".", "..", "") and len(made) <= 150
    assert directory_name(name + "!") != made


def test_destinations_named_like_the_lanes_own_files_are_kept_apart(tmp_path):
    lane = open_lane(tmp_path)
    for destination in ("lock", "quarantine"):
        record = frames.encode(destination, Record(b"{}", "d", destination), 1)
        lane.log_for(destination).append([record])
    lane = reopened(lane)
    assert sorted((found.destination, found.records) for found in lane.recover()) == [("lock", 1), ("quarantine", 1)]
