"""The supervisor with an injected clock: backoff, notification, recovery."""

from __future__ import annotations

import logging

import pytest

from frazil.server.supervisor import MAX_BACKOFF, Daemon, Supervisor


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[float] = []

    def __call__(self, now: float) -> None:
        self.calls.append(now)
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"boom {len(self.calls)}")


def test_due_daemons_run_at_their_interval():
    fast, slow = Flaky(0), Flaky(0)
    sup = Supervisor([Daemon("fast", fast, 1.0), Daemon("slow", slow, 10.0)])
    for t in range(0, 21):
        sup.step(float(t))
    assert fast.calls == [float(t) for t in range(21)]
    assert slow.calls == [0.0, 10.0, 20.0]


def test_a_crashing_daemon_backs_off_notifies_once_and_recovers():
    flaky = Flaky(6)
    messages: list[str] = []
    daemon = Daemon("flaky", flaky, 1.0)
    sup = Supervisor([daemon], notify=messages.append, notify_after=5)
    now = 0.0
    pauses = []
    for _ in range(8):
        due = sup.step(now)
        pauses.append(due - now)
        now = due
    assert pauses[:6] == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]  # interval * 2^crashes
    assert pauses[6:] == [1.0, 1.0]  # recovered: back to its interval
    assert len(messages) == 1 and "crashed 5 times in a row" in messages[0]
    assert daemon.crashes == 0 and daemon.runs == 2


def test_backoff_is_bounded_and_a_broken_notifier_does_not_stop_it(caplog):
    def broken_notify(_message: str) -> None:
        raise OSError("no mail")

    sup = Supervisor([Daemon("x", Flaky(100), 60.0)], notify=broken_notify, notify_after=1)
    now = 0.0
    for _ in range(10):
        now = sup.step(now)
    assert sup.daemons[0].next_run - now <= MAX_BACKOFF
    assert "could not notify" in caplog.text


def test_one_crashing_daemon_does_not_stop_the_others():
    good = Flaky(0)
    sup = Supervisor([Daemon("bad", Flaky(100), 1.0), Daemon("good", good, 1.0)])
    for t in range(5):
        sup.step(float(t))
    assert len(good.calls) == 5


@pytest.mark.parametrize("crashes", [1, 3])
def test_notification_needs_that_many_crashes(crashes):
    messages: list[str] = []
    sup = Supervisor([Daemon("d", Flaky(crashes), 1.0)], notify=messages.append, notify_after=4)
    now = 0.0
    for _ in range(10):
        now = sup.step(now)
    assert messages == []


def test_health_follows_each_daemon_through_crashes_and_recovery():
    flaky, steady = Flaky(3), Flaky(0)
    sup = Supervisor([Daemon("flaky", flaky, 1.0), Daemon("steady", steady, 1.0)], notify_after=3)

    def states() -> list[tuple[str, str, int]]:
        return [(d.name, d.state, d.crashes) for d in sup.health()]

    assert states() == [("flaky", "waiting", 0), ("steady", "waiting", 0)]
    now = sup.step(0.0)
    assert states() == [("flaky", "restarting", 1), ("steady", "running", 0)]
    assert sup.health()[0].error == "RuntimeError: boom 1"
    while len(flaky.calls) < 3:  # the second and third crash
        now = sup.step(now)
    assert states()[0] == ("flaky", "failing", 3)  # as many as the administrator hears of
    while len(flaky.calls) < 4:
        now = sup.step(now)
    assert states()[0] == ("flaky", "running", 0) and sup.health()[0].error == ""
    assert sup.health()[0].runs == 1


def test_daemons_are_stopped_once_the_supervisor_returns():
    import threading

    sup = Supervisor([Daemon("d", Flaky(0), 1.0)])
    stop = threading.Event()
    stop.set()
    sup.run(stop)
    assert [d.state for d in sup.health()] == ["stopped"]


def test_a_crash_is_one_line_unless_debug_asks_for_the_traceback(caplog):
    sup = Supervisor([Daemon("d", Flaky(2), 1.0)])
    caplog.set_level(logging.INFO, logger="frazil.server.supervisor")
    now = sup.step(0.0)
    (record,) = caplog.records
    assert (
        record.getMessage()
        == "daemon d crashed (1 in a row), restarting in 2 s: RuntimeError: boom 1"
    )
    assert not record.exc_info
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="frazil.server.supervisor")
    now = sup.step(now)
    assert caplog.records[0].exc_info is not None  # -v: the traceback too
    caplog.clear()
    sup.step(now)
    recovered, ran = (r.getMessage() for r in caplog.records)
    assert recovered == "daemon d recovered after 2 crash(es)"
    assert ran.startswith("daemon d ran in ")
