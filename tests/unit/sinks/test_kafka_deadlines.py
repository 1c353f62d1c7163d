"""send_timeout on the loop: late records fail, acknowledged ones are let go at once."""

from __future__ import annotations

import asyncio

import pytest

from sinks.kafka.deadlines import SendDeadlines


class Late(Exception):
    pass


def deadlines_on(loop, timeout, expired):
    return SendDeadlines(loop, timeout, lambda future: Late(), expired.append)


@pytest.mark.gen_test
async def test_acknowledged_records_are_let_go_as_new_ones_come_not_when_the_timer_fires():
    loop, expired = asyncio.get_running_loop(), []
    deadlines = deadlines_on(loop, 10.0, expired)
    for _ in range(1000):
        future = loop.create_future()
        deadlines.watch(future)
        future.set_result(None)  # acknowledged at once, as a busy broker does
    assert len(deadlines) == 1  # only the newest, until the next one comes
    blocker = loop.create_future()
    deadlines.watch(blocker)  # open: what is acknowledged behind it waits for it
    for _ in range(10):
        future = loop.create_future()
        deadlines.watch(future)
        future.set_result(None)
    assert len(deadlines) == 11
    blocker.set_result(None)
    deadlines.watch(loop.create_future())
    assert len(deadlines) == 1 and expired == []


@pytest.mark.gen_test
async def test_a_record_not_acknowledged_in_time_fails_and_the_others_do_not():
    loop, expired = asyncio.get_running_loop(), []
    deadlines = deadlines_on(loop, 0.05, expired)
    done, late = loop.create_future(), loop.create_future()
    deadlines.watch(done)
    deadlines.watch(late)
    done.set_result("ok")
    with pytest.raises(Late):
        await asyncio.wait_for(late, 1.0)
    assert done.result() == "ok" and expired == [1] and len(deadlines) == 0
