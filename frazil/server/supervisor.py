"""Runs the server's daemons, restarting any that crashes (the main daemon of "The IceProd
Framework").

Each daemon is a ``step(now)`` with an interval. ``Supervisor.step(now)`` runs the ones that
are due and returns when the next one is; a daemon whose step raises is logged, retried
after an exponentially growing pause, and after ``notify_after`` crashes in a row the
administrator is notified once (an ERROR log line plus the configured notifier). A step
that succeeds again ends the streak. Tests drive ``step`` with their own clock.

``Supervisor.health()`` says how each daemon is (``/health``): one that crashed
``notify_after`` times in a row or more is ``failing``, and the server unhealthy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from frazil.wire import DaemonHealth

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0


@dataclass
class Daemon:
    """One background job: what to run, how often, and its crash record."""

    name: str
    step: Callable[[float], object]
    interval: float
    next_run: float = 0.0
    crashes: int = 0
    notified: bool = False
    runs: int = 0
    error: str = ""  # what its last crash said


class Supervisor:
    """Runs daemons when due and keeps them alive."""

    def __init__(
        self,
        daemons: list[Daemon],
        *,
        notify: Callable[[str], None] | None = None,
        notify_after: int = 5,
    ) -> None:
        self.daemons = daemons
        self.notify = notify
        self.notify_after = notify_after
        #: set once ``run`` has returned (the server is stopping, or its thread died)
        self.stopped = False

    def step(self, now: float) -> float:
        """Run every due daemon once; return the time the next one is due."""
        for d in self.daemons:
            if d.next_run > now:
                continue
            started = time.monotonic()
            try:
                result = d.step(now)
            except Exception as exc:
                self._crashed(d, now, exc)
            else:
                d.runs += 1
                if d.crashes:
                    log.info("daemon %s recovered after %d crash(es)", d.name, d.crashes)
                d.crashes, d.notified, d.error = 0, False, ""
                d.next_run = now + d.interval
                log.debug("daemon %s ran in %.3f s: %r", d.name, time.monotonic() - started, result)
        return min(d.next_run for d in self.daemons)

    def _crashed(self, d: Daemon, now: float, exc: Exception) -> None:
        d.crashes += 1
        d.error = f"{type(exc).__name__}: {exc}"
        pause = min(d.interval * 2**d.crashes, MAX_BACKOFF)
        d.next_run = now + pause
        # one line by default; the traceback with -v (a crash that repeats would repeat it)
        log.warning(
            "daemon %s crashed (%d in a row), restarting in %.0f s: %s",
            d.name, d.crashes, pause, d.error, exc_info=log.isEnabledFor(logging.DEBUG),
        )  # fmt: skip
        if d.crashes >= self.notify_after and not d.notified:
            d.notified = True
            message = f"frazil daemon {d.name} crashed {d.crashes} times in a row: {exc}"
            log.error("%s", message)
            if self.notify is not None:
                try:
                    self.notify(message)
                except Exception as failure:
                    log.error("could not notify the administrator: %s", failure)

    def health(self) -> list[DaemonHealth]:
        """How each daemon is now."""
        return [
            DaemonHealth(d.name, self._state(d), d.crashes, d.runs, d.error) for d in self.daemons
        ]

    def _state(self, d: Daemon) -> str:
        if self.stopped:
            return "stopped"
        if d.crashes >= self.notify_after:
            return "failing"
        if d.crashes:
            return "restarting"
        return "running" if d.runs else "waiting"

    def run(self, stop: threading.Event, clock: Callable[[], float] = time.time) -> None:
        """Run until ``stop`` is set (in a thread of ``frazil server``)."""
        try:
            while not stop.is_set():
                due = self.step(clock())
                stop.wait(max(0.05, min(due - clock(), 5.0)))
        finally:
            self.stopped = True
