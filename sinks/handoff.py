"""Work between the IOLoop and a sink's worker thread, and futures settled once.

``BatchQueue``: the loop hands a thread work; what one loop iteration submits
arrives as one list, so a burst of requests costs the thread one wake-up.
``LoopInbox``: the one door through which a thread talks back; what it posts
reaches a callback on the loop in batches, one ``call_soon_threadsafe`` per
burst, and the thread never writes its owner's attributes itself.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any, Callable, Generic, Iterable, List, Optional, Tuple, TypeVar

T = TypeVar("T")

_STOP = object()
_WAKE = object()


def settle(future: "asyncio.Future[Any]", error: Optional[BaseException] = None, result: Any = None) -> None:
    """Resolve ``future`` unless it is done already (timed out, or its client went away)."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


async def stop_worker(work: "BatchQueue[Any]", thread: threading.Thread, inbox: "LoopInbox[Any]") -> None:
    """On the loop: the thread gets what was submitted, then stop; wait for it (off the loop), take its last news."""
    work.close()
    await asyncio.get_running_loop().run_in_executor(None, thread.join)
    inbox.deliver()


class BatchQueue(Generic[T]):
    """Loop -> worker thread: ``submit`` on the loop, ``take`` in the thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._gathered: Optional[List[T]] = None
        self.closed = False

    def submit(self, item: T) -> None:
        """On the loop: gather this loop iteration's items; they are handed over together at its end."""
        if self._gathered is None:
            self._gathered = []
            self._loop.call_soon(self._hand_over)
        self._gathered.append(item)

    def _hand_over(self) -> None:
        gathered, self._gathered = self._gathered, None
        if gathered:
            self._queue.put(gathered)

    def close(self) -> None:
        """On the loop: what was submitted still goes to the thread, then ``take`` says stop."""
        self.closed = True
        self._hand_over()
        self._queue.put(_STOP)

    def wake(self) -> None:
        """Any thread: make a waiting ``take`` return now."""
        self._queue.put(_WAKE)

    def take(self, timeout: Optional[float] = None) -> Tuple[List[T], bool]:
        """In the thread: all items handed over so far, waiting up to ``timeout`` (None: for ever) for the
        first; and whether the loop said stop."""
        items: List[T] = []
        stop = False
        try:
            handed = self._queue.get(timeout=None if timeout is None else max(0.0, timeout))
        except queue.Empty:
            return items, stop
        while True:
            if handed is _STOP:
                stop = True
            elif handed is not _WAKE:
                items.extend(handed)
            try:
                handed = self._queue.get_nowait()
            except queue.Empty:
                return items, stop


class LoopInbox(Generic[T]):
    """Worker thread -> loop: ``post`` from any thread, ``receive(items)`` runs on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Callable[[List[T]], None]) -> None:
        self._loop = loop
        self._receive = receive
        self._lock = threading.Lock()
        self._items: List[T] = []
        self._scheduled = False

    def post(self, item: T) -> None:
        self.post_all((item,))

    def post_all(self, items: Iterable[T]) -> None:
        with self._lock:
            self._items.extend(items)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self.deliver)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def deliver(self) -> None:
        """On the loop: hand what was posted to ``receive`` now (also called at close, to miss nothing)."""
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        if items:
            self._receive(items)
