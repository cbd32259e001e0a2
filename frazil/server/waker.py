"""Waking long-polling pilots the moment tasks become ready.

Any thread may call ``wake()`` (the database calls it after a commit that made tasks
ready); requests waiting in the event loop return at once. A waiter that started after a
wake it did not see (its generation is old) does not wait at all, so no wake is lost
between a pilot finding nothing and starting to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Waker:
    """A generation counter with asyncio waiters."""

    def __init__(self) -> None:
        self.generation = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Event] = set()

    def wake(self) -> None:
        """Something may be ready now (callable from any thread)."""
        with self._lock:
            self.generation += 1
            loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for event in self._waiters:
            event.set()

    async def wait(self, since: int, timeout: float) -> bool:
        """Wait until a wake after generation ``since`` or ``timeout``; True when woken."""
        with self._lock:
            self._loop = asyncio.get_running_loop()
            if self.generation != since:
                return True
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(event)
