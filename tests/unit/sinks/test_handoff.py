"""The loop <-> worker thread hand-off: one list per loop iteration there, batches back, futures settled once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sinks.handoff import BatchQueue, LoopInbox, settle


@pytest.mark.gen_test
async def test_one_loop_iteration_is_one_list_for_the_thread():
    work = BatchQueue(asyncio.get_running_loop())
    for item in range(5):
        work.submit(item)
    assert work.take(timeout=0) == ([], False)  # nothing before the iteration ends
    await asyncio.sleep(0)
    work.submit(5)
    await asyncio.sleep(0)
    assert work.take(timeout=1) == ([0, 1, 2, 3, 4, 5], False)


@pytest.mark.gen_test
async def test_close_hands_over_what_was_submitted_then_says_stop():
    work = BatchQueue(asyncio.get_running_loop())
    work.submit("last")
    work.close()
    assert work.closed
    assert work.take(timeout=1) == (["last"], True)


@pytest.mark.gen_test
async def test_wake_ends_a_wait_with_nothing():
    work = BatchQueue(asyncio.get_running_loop())
    work.wake()
    assert work.take(timeout=5) == ([], False)


@pytest.mark.gen_test
async def test_the_inbox_delivers_a_burst_from_a_thread_in_one_call():
    loop = asyncio.get_running_loop()
    calls = []
    inbox = LoopInbox(loop, calls.append)
    posted = threading.Event()

    def thread():
        for item in range(100):
            inbox.post(item)
        inbox.post_all([100, 101])
        posted.set()

    worker = threading.Thread(target=thread)
    worker.start()
    await loop.run_in_executor(None, posted.wait)
    worker.join()
    await asyncio.sleep(0.01)
    assert sum(calls, []) == list(range(102))
    assert len(calls) < 10  # batches, not one callback per item


@pytest.mark.gen_test
async def test_settle_once():
    loop = asyncio.get_running_loop()
    done, failed, late = loop.create_future(), loop.create_future(), loop.create_future()
    settle(done)
    settle(failed, ValueError("no"))
    late.cancel()
    settle(late, ValueError("too late"))  # a gone client: nothing raises
    settle(done, ValueError("twice"))
    assert done.result() is None
    assert isinstance(failed.exception(), ValueError)
