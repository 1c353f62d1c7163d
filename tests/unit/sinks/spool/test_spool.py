"""The spool with a broker played in memory: spooled while it is away, delivered in order when it is back."""

from __future__ import annotations

import asyncio
import os
import time
import tracemalloc

import pytest

from sinks.base import DestinationNotFound, Record, SinkUnavailable
from sinks.health import Health
from sinks.spool import Fate, InDoubt, SpoolGate
from sinks.spool.options import SPOOL_OPTIONS


class FakeBroker:
    """Takes records while ``up``; keeps them in arrival order."""

    def __init__(self) -> None:
        self.up = False
        self.received = []
        self.refuse = set()  # destinations it will never take
        self.doubt = None  # a fate: the next record sent is answered InDoubt with it

    async def publish(self, destination: str, record: Record) -> None:
        await asyncio.sleep(0)
        if destination in self.refuse:
            raise DestinationNotFound("no such topic")
        if self.doubt is not None:
            fate, self.doubt = self.doubt, None
            raise InDoubt("no acknowledgement in time", fate)
        if not self.up:
            raise SinkUnavailable("the broker is away")
        self.received.append((destination, record))

    def msgids(self, destination=None):
        return [record.msgid for d, record in self.received if destination in (None, d)]


def record(n: int, size: int = 20) -> Record:
    return Record(b'{"n":%d,"pad":"%s"}' % (n, b"x" * size), dataset="ds", msgid="m%d" % n, key=b"k%d" % (n % 3))


@pytest.fixture
def broker():
    return FakeBroker()


@pytest.fixture
def make_gate(io_loop, tmp_path, broker):
    gates = []

    async def make(**options):
        options.setdefault("directory", str(tmp_path / "spool"))
        gate = SpoolGate("bus", SPOOL_OPTIONS(options), broker.publish)
        await gate.start()
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        io_loop.run_sync(lambda gate=gate: _close(gate))


async def _close(gate):
    await gate.stop_replay(1)
    await gate.close()


async def drained(gate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while gate.spool.backlogs or gate.spool.bytes:  # delivered, and the files gone
        assert time.monotonic() < deadline, gate.spool.report()
        await asyncio.sleep(0.01)


@pytest.mark.gen_test(timeout=30)
async def test_records_spooled_while_the_broker_is_away_reach_it_in_order_with_their_key_and_headers(make_gate, broker):
    gate = await make_gate()
    receipts = await asyncio.gather(*(gate.send("t%d" % (n % 2), record(n)) for n in range(200)))
    assert all(receipt is not None and receipt.spooled for receipt in receipts)
    assert gate.spool.report()["records"] == 200
    broker.up = True
    await drained(gate)
    assert broker.msgids("t0") == ["m%d" % n for n in range(0, 200, 2)]
    assert broker.msgids("t1") == ["m%d" % n for n in range(1, 200, 2)]
    destination, first = broker.received[0]
    assert first.headers == [("dataset", b"ds"), ("msgid", first.msgid.encode())]
    assert first.key == ("k%d" % (int(first.msgid[1:]) % 3)).encode()
    assert gate.spool.bytes == 0 and os.listdir(gate.spool.lane_path) == ["lock"]


@pytest.mark.gen_test(timeout=30)
async def test_a_destination_with_records_spooled_keeps_spooling_the_others_go_straight(make_gate, broker):
    gate = await make_gate(replay_rate=50)
    await gate.send("slow", record(0))
    broker.up = True
    assert (await gate.send("slow", record(1))).spooled  # behind record 0: its order is kept
    assert await gate.send("other", record(2)) is None  # nothing spooled for it: straight to the broker
    await drained(gate)
    assert broker.msgids("slow") == ["m0", "m1"]
    assert await gate.send("slow", record(3)) is None


@pytest.mark.gen_test(timeout=30)
async def test_a_record_in_doubt_that_the_broker_took_is_not_sent_again_and_holds_its_followers(make_gate, broker):
    gate = await make_gate()
    fate = asyncio.get_running_loop().create_future()
    broker.up = True
    broker.doubt = fate
    assert (await gate.send("t", record(0))).spooled
    assert (await gate.send("t", record(1))).spooled
    await asyncio.sleep(0.3)
    assert broker.received == []  # record 1 waits behind record 0, whose first attempt may still arrive
    broker.received.append(("t", record(0)))  # ... and it does
    fate.set_result(Fate.DELIVERED)
    await drained(gate)
    assert broker.msgids() == ["m0", "m1"]
    assert gate.replayer.report()["in_doubt"] == 0


@pytest.mark.parametrize("outcome, in_doubt", [(Fate.NOT_DELIVERED, 0), (Fate.UNKNOWN, 1)])
@pytest.mark.gen_test(timeout=30)
async def test_a_record_in_doubt_that_did_not_arrive_is_sent(make_gate, broker, outcome, in_doubt):
    gate = await make_gate()
    fate = asyncio.get_running_loop().create_future()
    broker.up = True
    broker.doubt = fate
    assert (await gate.send("t", record(0))).spooled
    fate.set_result(outcome)
    await drained(gate)
    assert broker.msgids() == ["m0"]
    assert gate.replayer.report()["in_doubt"] == in_doubt


@pytest.mark.gen_test(timeout=30)
async def test_an_answer_that_came_while_the_timeout_was_handled_is_a_plain_success(make_gate, broker):
    gate = await make_gate()
    fate = asyncio.get_running_loop().create_future()
    fate.set_result(Fate.DELIVERED)
    broker.doubt = fate
    assert await gate.send("t", record(0)) is None
    assert gate.spool.report()["spooled"] == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_full_spool_refuses_and_takes_records_again_once_some_are_delivered(make_gate, broker, caplog):
    gate = await make_gate(max_bytes="1MiB")
    taken = refused = 0
    for n in range(150):
        try:
            await gate.send("t", record(n, size=10_000))
            taken += 1
        except SinkUnavailable as exc:
            assert "the spool is full" in str(exc)
            refused += 1
    assert 90 < taken < 110 and refused == 150 - taken
    assert gate.spool.bytes <= 1 << 20
    report = gate.health(Health(up=False)).details["spool"]
    assert report["state"] == "full" and report["refused_full"] == refused
    assert not gate.health(Health(up=False)).spooling  # a down sink whose spool is full is not ready
    assert sum("is full" in message for message in caplog.messages) == 1  # once per change, not per record
    broker.up = True
    await drained(gate)
    assert broker.msgids() == ["m%d" % n for n in range(taken)]
    broker.up = False
    assert (await gate.send("t", record(999))).spooled
    assert gate.spool.report()["state"] == "ok"


@pytest.mark.gen_test(timeout=30)
async def test_what_a_closed_spool_held_is_delivered_after_a_restart(make_gate, broker):
    gate = await make_gate()
    await asyncio.gather(*(gate.send("t", record(n)) for n in range(50)))
    await _close(gate)
    broker.up = True
    again = await make_gate()
    assert again.spool.report()["records"] == 50
    await drained(again)
    assert broker.msgids() == ["m%d" % n for n in range(50)]


@pytest.mark.gen_test(timeout=30)
async def test_a_record_the_broker_refuses_for_good_is_moved_aside_and_the_rest_goes_on(make_gate, broker, caplog):
    gate = await make_gate()
    await gate.send("gone", record(0))
    await gate.send("t", record(1))
    broker.refuse.add("gone")
    broker.up = True
    await drained(gate)
    assert broker.msgids() == ["m1"]
    quarantine = os.path.join(gate.spool.lane_path, "quarantine")
    [aside] = os.listdir(quarantine)
    assert aside.endswith(".refused")
    assert gate.replayer.report()["set_aside"] == 1
    assert "no such topic" in caplog.text


@pytest.mark.gen_test(timeout=30)
async def test_replay_keeps_to_its_rate(make_gate, broker):
    gate = await make_gate(replay_rate=100)
    await asyncio.gather(*(gate.send("t", record(n)) for n in range(60)))
    broker.up = True
    started = time.monotonic()
    await drained(gate)
    elapsed = time.monotonic() - started
    assert 0.45 < elapsed < 3, elapsed  # 60 records at 100/s, the first 5 at once
    assert 10 < gate.replayer.report()["replay_rate"] <= 100


@pytest.mark.gen_test(timeout=120)
async def test_memory_stays_flat_however_large_the_spool(make_gate, broker):
    gate = await make_gate(replay_rate=1_000_000, max_bytes="200MiB")
    for start in range(0, 6000, 500):
        await asyncio.gather(*(gate.send("t%d" % (n % 3), record(n, size=10_000)) for n in range(start, start + 500)))
    assert gate.spool.bytes > 50 << 20
    received = 0

    async def count(destination, record):
        nonlocal received
        received += 1

    gate.replayer._publish = count
    tracemalloc.start()
    try:
        await drained(gate, timeout=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert received == 6000
    assert peak < 24 << 20, "replaying %d MiB took %d MiB" % (gate.spool.bytes >> 20, peak >> 20)


@pytest.mark.gen_test(timeout=30)
async def test_health_shows_the_spool_and_whether_a_down_sink_still_takes_records(make_gate, broker):
    gate = await make_gate()
    await gate.send("t", record(0))
    health = gate.health(Health(up=False, error="away", details={"url": "x"}))
    assert health.spooling and health.details["url"] == "x"
    spool = health.details["spool"]
    assert spool["records"] == 1 and spool["bytes"] > 0 and spool["oldest_age_seconds"] >= 0
    assert {"replay_rate", "replayed", "in_doubt", "max_bytes", "state"} <= set(spool)
    assert not gate.health(Health(up=True)).spooling


@pytest.mark.gen_test(timeout=30)
async def test_a_spool_that_cannot_be_opened_refuses_records_and_says_why(make_gate, broker, tmp_path):
    (tmp_path / "taken").write_text("a file where the directory should be")
    gate = await make_gate(directory=str(tmp_path / "taken"))
    with pytest.raises(SinkUnavailable, match="the broker is away.*cannot open the spool"):
        await gate.send("t", record(0))
    assert not gate.health(Health(up=False)).spooling
    broker.up = True
    assert await gate.send("t", record(1)) is None  # the broker path is not affected


@pytest.mark.gen_test(timeout=30)
async def test_fsync_always_writes_each_record_on_its_own(make_gate, broker):
    gate = await make_gate(fsync="always")
    await asyncio.gather(*(gate.send("t", record(n)) for n in range(20)))
    broker.up = True
    await drained(gate)
    assert broker.msgids() == ["m%d" % n for n in range(20)]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.gen_test(timeout=60)
async def test_a_flapping_broker_under_load_gets_every_record_once_in_order(make_gate, broker, seed):
    import random

    chosen = random.Random(seed)
    gate = await make_gate(replay_rate=2000)
    stop = asyncio.Event()
    answered = {}

    async def client(number):
        for sent in range(150):
            msgid = "c%d-%d" % (number, sent)
            try:
                receipt = await gate.send("t%d" % (number % 2), Record(b"{}", "ds", msgid))
                answered[msgid] = "spooled" if receipt else "direct"
            except SinkUnavailable:
                answered[msgid] = "refused"
            await asyncio.sleep(chosen.random() / 500)

    async def flap():
        while not stop.is_set():
            broker.up = not broker.up
            await asyncio.sleep(chosen.random() / 20)

    flapping = asyncio.ensure_future(flap())
    await asyncio.gather(*(client(number) for number in range(6)))
    stop.set()
    await flapping
    broker.up = True
    await drained(gate)
    msgids = broker.msgids()
    assert sorted(msgids) == sorted(answered) and len(set(msgids)) == len(msgids)
    assert "refused" not in answered.values()
    for number in range(6):
        mine = [int(msgid.split("-")[1]) for msgid in msgids if msgid.startswith("c%d-" % number)]
        assert mine == sorted(mine)
    assert {"spooled", "direct"} <= set(answered.values())
