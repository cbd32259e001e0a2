"""``MultiPilot`` over a fake ``PilotSession``: tasks handed out run as real shell modules."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from frazil.pilot.multi import MultiOptions, MultiPilot
from frazil.wire import ExchangeAnswer, Handed, Module, Report, Requirements, TaskSpec, Tray

#: leaves a mark in its directory, sleeps $2 seconds, then exits with $1
SCRIPT = 'echo "task $FRAZIL_PILOT"\ntouch started\nsleep "$2"\nexit "$1"\n'


@dataclass(frozen=True)
class Exchanged:
    reports: tuple[Report, ...]
    limit: int
    handed: tuple[int, ...]


class FakeSession:
    """A server that hands out queued tasks, at most ``limit`` per exchange, and records
    every exchange; it asserts that a pilot never holds more tasks than its cores."""

    def __init__(self, tasks: Sequence[Handed], cpu: int) -> None:
        self.queue = list(tasks)
        self.cpu = cpu
        self.exchanges: list[Exchanged] = []
        self.ended: list[str] = []
        self.held: set[int] = set()
        self.most_held = 0
        self._lock = threading.Lock()

    def exchange(
        self, reports: Sequence[Report] = (), *, limit: int = 0, wait: float = 0.0,
        time_left: float | None = None, host: str = "", request: str | None = None,
    ) -> ExchangeAnswer:  # fmt: skip
        with self._lock:
            self.held -= {r.task_id for r in reports if r.kind != "log"}
            handed, self.queue = self.queue[:limit], self.queue[limit:]
            self.held |= {t.task_id for t in handed}
            self.most_held = max(self.most_held, len(self.held))
            self.exchanges.append(
                Exchanged(tuple(reports), limit, tuple(t.task_id for t in handed))
            )
        if not handed and wait:
            time.sleep(min(wait, 0.02))  # the real server holds a request for work
        return ExchangeAnswer(tuple("ok" for _ in reports), tuple(handed))

    def end(self, reason: str) -> int:
        self.ended.append(reason)
        return 0

    def close(self) -> None:
        pass

    def reports(self) -> list[Report]:
        """The reports that end attempts (the ones that only carry logs left out)."""
        return [r for e in self.exchanges for r in e.reports if r.kind != "log"]

    def log(self, task_id: int, name: str) -> str:
        """A task's log as the server would hold it: its chunks' bytes, each once."""
        held = b""
        for e in self.exchanges:
            for r in e.reports:
                for c in r.chunks if r.task_id == task_id else ():
                    if c.name == name and c.offset <= len(held):
                        held += c.payload()[len(held) - c.offset :]
        return held.decode()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "work.sh"
    path.write_text(SCRIPT)
    return path


def handed(script: Path, task_id: int, exit_code: int = 0, sleep: float = 0.1) -> Handed:
    module = Module("work", str(script), "", "", (str(exit_code), str(sleep)), "", False, {}, {})
    spec = TaskSpec(
        job=task_id, index=0, name="t", depends=(), requirements=Requirements(1, 0, 0.5, 1.0, 1.0),
        data=(), batchsys={}, container="", trays=(Tray("tray", 0, None, (module,)),),
        task_id=task_id, attempt=1,
    )  # fmt: skip
    return Handed(task_id, 1, f"pk-{task_id}", spec)


def multi(tmp_path: Path, session: FakeSession, cpu: int = 2, idle: float = 0.3) -> MultiPilot:
    options = MultiOptions(
        server="http://127.0.0.1:9", pilot_id=3, key="k", workdir=tmp_path / "tasks", cpu=cpu,
        memory=4.0, disk=4.0, walltime=1.0, idle=idle, wait=0.1,
    )  # fmt: skip
    return MultiPilot(options, session)  # type: ignore[arg-type]


def test_tasks_run_within_the_pilot_s_cores_and_are_reported_later(
    tmp_path: Path, script: Path
) -> None:
    session = FakeSession([handed(script, i) for i in (1, 2, 3, 4, 5)], cpu=2)
    pilot = multi(tmp_path, session)
    started = time.monotonic()
    assert pilot.run() == 0
    assert time.monotonic() - started < 3
    first = session.exchanges[0]
    assert first.limit == 2 and first.handed == (1, 2) and first.reports == ()
    assert all(e.limit <= 2 for e in session.exchanges)
    assert session.most_held == 2  # never more tasks at once than cores
    finished = [r for r in session.reports() if r.kind == "finish"]
    assert sorted(r.task_id for r in finished) == [1, 2, 3, 4, 5]  # each once
    for r in finished:  # a report comes in an exchange after the one that handed its task
        handed_at = next(k for k, e in enumerate(session.exchanges) if r.task_id in e.handed)
        reported_at = next(k for k, e in enumerate(session.exchanges) if r in e.reports)
        assert reported_at > handed_at
        assert r.passkey == f"pk-{r.task_id}" and session.log(r.task_id, "stdout") == "task 3\n"
    assert pilot.done == 5
    assert session.ended == ["idle for 0.3 s"]
    assert list((tmp_path / "tasks").iterdir()) == []  # each task's directory is removed


def test_a_failed_task_is_reported_with_its_exit_code(tmp_path: Path, script: Path) -> None:
    session = FakeSession([handed(script, 7, exit_code=4, sleep=0)], cpu=1)
    assert multi(tmp_path, session, cpu=1).run() == 0
    (report,) = session.reports()
    assert report.kind == "fail" and report.exit_code == 4 and report.counts
    assert report.task_id == 7 and report.attempt == 1


def test_an_idle_pilot_ends_at_once(tmp_path: Path) -> None:
    session = FakeSession([], cpu=2)
    started = time.monotonic()
    assert multi(tmp_path, session, idle=0.2).run() == 0
    assert time.monotonic() - started < 1.5
    assert session.ended == ["idle for 0.2 s"]
    assert session.exchanges and all(e.limit == 2 for e in session.exchanges)


def test_a_terminated_pilot_hands_its_running_tasks_back_uncounted(
    tmp_path: Path, script: Path
) -> None:
    session = FakeSession([handed(script, 8, sleep=30)], cpu=1)
    pilot = multi(tmp_path, session, cpu=1, idle=5.0)

    def stop_when_running() -> None:
        deadline = time.monotonic() + 10
        while not (tmp_path / "tasks" / "8-1" / "task" / "started").exists():
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        pilot.terminate()

    threading.Thread(target=stop_when_running, daemon=True).start()
    started = time.monotonic()
    assert pilot.run() == 143
    assert time.monotonic() - started < 5
    (report,) = session.reports()
    assert report.kind == "fail" and not report.counts and not report.timeout
    assert report.error == "terminated by the batch system (SIGTERM)"
    assert session.ended == ["terminated (SIGTERM)"]
