"""The frame format: what goes in comes out, and no damage is ever read back as a record."""

from __future__ import annotations

import io

from hypothesis import given, settings, strategies as st

from sinks.base import Record
from sinks.spool import frames

names = st.text(min_size=1, max_size=40)
headers = st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)), max_size=5)


@st.composite
def records(draw):
    pairs = draw(headers)
    record = frames.SpooledRecord(draw(st.binary(max_size=300)), pairs, draw(st.none() | st.binary(max_size=30)))
    return draw(names), record, draw(st.integers(min_value=0, max_value=2**63 - 1))


def reader_of(data: bytes):
    return lambda offset, count: data[offset : offset + count]


def scanned(data: bytes, start: int = 0):
    return list(frames.scan(reader_of(data), start, len(data)))


@given(records())
def test_a_record_comes_back_as_it_went_in(spooled):
    destination, record, written_ms = spooled
    frame = frames.encode(destination, record, written_ms)
    [found] = scanned(frame)
    entry = frames.decode(found.payload)
    assert entry.destination == destination
    assert entry.written_ms == written_ms
    assert entry.record.value == record.value
    assert entry.record.key == record.key
    assert entry.record.headers == record.headers


def test_a_plain_record_keeps_its_dataset_and_msgid_headers():
    record = Record(b'{"a":1}', dataset="orders", msgid="m-1", key=b"k")
    [found] = scanned(frames.encode("orders.raw", record, 5))
    entry = frames.decode(found.payload)
    assert entry.record.headers == [("dataset", b"orders"), ("msgid", b"m-1")]
    assert (entry.record.dataset, entry.record.msgid, entry.record.key) == ("orders", "m-1", b"k")


@settings(max_examples=200)
@given(st.lists(records(), min_size=1, max_size=8), st.data())
def test_a_file_cut_anywhere_gives_back_the_whole_records_before_the_cut_and_a_tail(spooled, data):
    encoded = [frames.encode(*each) for each in spooled]
    whole = b"".join(encoded)
    cut = data.draw(st.integers(min_value=0, max_value=len(whole)))
    found = scanned(whole[:cut])
    ends = [sum(len(frame) for frame in encoded[: i + 1]) for i in range(len(encoded))]
    kept = [end for end in ends if end <= cut]
    assert [item.end for item in found if isinstance(item, frames.Frame)] == kept
    damage = [item for item in found if isinstance(item, frames.Damage)]
    if cut in kept or cut == 0:
        assert damage == []
    else:
        assert damage == [frames.Damage(kept[-1] if kept else 0, cut, tail=True)]


@settings(max_examples=200)
@given(st.lists(records(), min_size=2, max_size=8), st.data())
def test_a_flipped_byte_costs_only_its_own_record(spooled, data):
    encoded = [frames.encode(*each) for each in spooled]
    whole = bytearray(b"".join(encoded))
    at = data.draw(st.integers(min_value=0, max_value=len(whole) - 1))
    whole[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    starts = [sum(len(frame) for frame in encoded[:i]) for i in range(len(encoded))]
    hit = max(i for i, start in enumerate(starts) if start <= at)
    found = scanned(bytes(whole))
    sound = [item.start for item in found if isinstance(item, frames.Frame)]
    assert sound == [start for i, start in enumerate(starts) if i != hit]
    damage = [item for item in found if isinstance(item, frames.Damage)]
    assert len(damage) == 1 and damage[0].start == starts[hit]
    assert damage[0].tail == (hit == len(encoded) - 1)


def test_the_scan_reads_a_chunk_at_a_time(monkeypatch):
    monkeypatch.setattr(frames, "CHUNK", 64)
    spooled = [("t", Record(b"x" * 100, "d", "m%d" % n), n) for n in range(20)]
    data = b"".join(frames.encode(*each) for each in spooled)
    reads = []
    source = io.BytesIO(data)

    def read(offset, count):
        reads.append(count)
        source.seek(offset)
        return source.read(count)

    found = list(frames.scan(read, 0, len(data)))
    assert len(found) == 20 and all(isinstance(item, frames.Frame) for item in found)
    assert max(reads) <= 200  # one chunk, or one record: never the whole file


def test_garbage_between_records_is_one_stretch_of_damage():
    first = frames.encode("t", Record(b"1", "d", "a"), 1)
    second = frames.encode("t", Record(b"2", "d", "b"), 2)
    found = scanned(first + b"\0" * 37 + frames.MAGIC + b"garbage" + second)
    assert [type(item).__name__ for item in found] == ["Frame", "Damage", "Frame"]
    assert found[1] == frames.Damage(len(first), len(first) + 37 + 4 + 7, tail=False)
