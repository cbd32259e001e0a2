"""``Pilot``, one attempt from spec to report, over a fake ``Reporter`` and a shell module."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from frazil.errors import StaleAttempt
from frazil.pilot.run import Pilot, PilotOptions
from frazil.wire import (
    Failure,
    Finish,
    LogAck,
    LogChunk,
    Module,
    Requirements,
    TaskSpec,
    Tray,
)

#: says hello, leaves a mark in its directory, sleeps $2 seconds, then exits with $1
SCRIPT = """\
echo "hello from $FRAZIL_MODULE"
echo "a warning" >&2
touch started
sleep "$2"
exit "$1"
"""


def spec(script: Path, *args: str, hours: float = 1.0) -> TaskSpec:
    module = Module("work", str(script), "", "", args, "", False, {}, {})
    return TaskSpec(
        job=0, index=0, name="t", depends=(), requirements=Requirements(1, 0, 1.0, 1.0, hours),
        data=(), batchsys={}, container="", trays=(Tray("tray", 0, None, (module,)),),
        task_id=5, attempt=2,
    )  # fmt: skip


class FakeReporter:
    """Records what the pilot says; says the attempt is stale once ``stale_if()`` holds."""

    def __init__(self, spec: TaskSpec, stale_if: Callable[[], bool] = lambda: False) -> None:
        self._spec = spec
        self.stale_if = stale_if
        self.started: list[str] = []
        self.phases: list[str | None] = []
        self.finished: list[Finish] = []
        self.failures: list[Failure] = []
        self.logs: dict[str, str] = {}

    def spec(self) -> TaskSpec:
        return self._spec

    def start(self, host: str) -> None:
        self.started.append(host)

    def heartbeat(self, phase: str | None = None, logs: Sequence[LogChunk] = ()) -> list[LogAck]:
        self.phases.append(phase)
        if self.stale_if():
            raise StaleAttempt("task 5 attempt 2 is no longer current")
        return [self.append_log(chunk) for chunk in logs]

    def finish(self, done: Finish) -> None:
        self.finished.append(done)

    def fail(self, failure: Failure) -> str:
        self.failures.append(failure)
        return "waiting"

    def append_log(self, chunk: LogChunk) -> LogAck:
        held = self.logs.get(chunk.name, "").encode()
        assert chunk.offset <= len(held), "a gap"
        held += chunk.payload()[len(held) - chunk.offset :]
        self.logs[chunk.name] = held.decode()
        return LogAck(5, 2, chunk.name, len(held), 32 * 1024 * 1024)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "work.sh"
    path.write_text(SCRIPT)
    return path


def pilot(tmp_path: Path, reporter: FakeReporter, heartbeat: float = 60.0) -> Pilot:
    options = PilotOptions(
        server="http://127.0.0.1:9", task_id=5, attempt=2, passkey="pk",
        workdir=tmp_path / "attempt" / "task", heartbeat=heartbeat,
    )  # fmt: skip
    return Pilot(options, reporter)


def when_started(p: Pilot, then: Callable[[], None]) -> threading.Thread:
    """Call ``then`` once the module runs (it leaves ``started`` in its directory)."""

    def watch() -> None:
        deadline = time.monotonic() + 10
        while not (p.workdir / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_module_that_succeeds_is_reported_finished(
    tmp_path: Path, script: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="frazil")
    reporter = FakeReporter(spec(script, "0", "0"))
    p = pilot(tmp_path, reporter)
    assert p.run() == 0
    (done,) = reporter.finished
    assert reporter.failures == [] and len(reporter.started) == 1
    assert reporter.phases == ["copying_input", "running", "copying_output", "cleaning"]
    assert done.usage is not None and done.usage.wall_time is not None
    assert done.usage.wall_time > 0
    assert done.stats["tray[0].work.wall_time"] > 0
    assert reporter.logs["stdout"] == "hello from tray[0].work\n"
    assert "a warning" in reporter.logs["stderr"]
    assert "pilot for task 5 attempt 2" in reporter.logs["pilot"]
    assert not p.workdir.exists()  # a pilot of its own attempt cleans up


def test_a_module_that_fails_is_reported_with_its_exit_code(tmp_path: Path, script: Path) -> None:
    reporter = FakeReporter(spec(script, "3", "0"))
    assert pilot(tmp_path, reporter).run() == 1
    (failure,) = reporter.failures
    assert reporter.finished == []
    assert failure.exit_code == 3 and failure.counts and not failure.timeout
    assert "tray[0].work" in failure.error and "3" in failure.error
    assert failure.exhausted == ()
    assert "a warning" in reporter.logs["stderr"]


def test_sigterm_at_the_walltime_is_a_timeout(tmp_path: Path, script: Path) -> None:
    # 0.2 s of walltime requested; stopped after 90 % of it is the batch system's limit
    reporter = FakeReporter(spec(script, "0", "30", hours=0.2 / 3600))
    p = pilot(tmp_path, reporter)
    when_started(p, lambda: (time.sleep(0.25), p.terminate()))
    started = time.monotonic()
    assert p.run() == 143
    assert time.monotonic() - started < 5  # the module was stopped, not waited for
    (failure,) = reporter.failures
    assert failure.timeout and failure.counts and failure.exhausted == ("time",)
    assert failure.error.startswith("stopped at its walltime: SIGTERM after")


def test_sigterm_before_the_walltime_hands_the_task_back_uncounted(
    tmp_path: Path, script: Path
) -> None:
    reporter = FakeReporter(spec(script, "0", "30", hours=1.0))
    p = pilot(tmp_path, reporter)
    when_started(p, p.terminate)
    assert p.run() == 143
    (failure,) = reporter.failures
    assert failure.error == "terminated by the batch system (SIGTERM)"
    assert not failure.counts and not failure.timeout and failure.exhausted == ()
    assert reporter.finished == []


def test_a_stale_attempt_stops_its_module_and_reports_nothing(tmp_path: Path, script: Path) -> None:
    # the heartbeat thread's first beat after the module started is refused
    started_file = tmp_path / "attempt" / "task" / "started"
    reporter = FakeReporter(spec(script, "0", "30"), stale_if=started_file.exists)
    p = pilot(tmp_path, reporter, heartbeat=0.05)
    started = time.monotonic()
    assert p.run() == 1
    assert time.monotonic() - started < 5  # the module was stopped
    assert p.stale and "running" in reporter.phases and "copying_output" not in reporter.phases
    assert reporter.finished == [] and reporter.failures == [] and reporter.logs == {}


def test_an_attempt_stale_before_it_starts_runs_nothing(tmp_path: Path, script: Path) -> None:
    reporter = FakeReporter(spec(script, "0", "0"), stale_if=lambda: True)
    assert pilot(tmp_path, reporter).run() == 1
    assert reporter.phases == ["copying_input"]
    assert not (tmp_path / "attempt" / "logs" / "stdout").exists()  # the module never ran
    assert reporter.finished == [] and reporter.failures == [] and reporter.logs == {}
