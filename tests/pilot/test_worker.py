"""Class runs in the module host's workers: a worker takes run after run, each as from a
fresh fork, and retires when a run left something it cannot put back (real processes)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from frazil.pilot import classrun

STATEFUL = """\
import logging
import os
import signal
import sys
import threading
import time
import warnings

from frazil.pilot.modules import Module, Param

COUNTER = []


class Stateful(Module):
    parameters = {
        "mess": Param(False, "change the process's state"),
        "thread": Param(False, "leave a thread running"),
        "burn": Param(0.0, "CPU seconds to spend"),
        "allocate": Param(0, "MB to hold for a moment"),
        "importing": Param("", "a module to import"),
        "odd_stats": Param(False, "keep a statistic JSON cannot hold"),
    }

    def run(self, stats):
        COUNTER.append(1)
        stats["counter"] = len(COUNTER)
        stats["pid"] = os.getpid()
        stats["env"] = float("FRAZIL_TEST_MESS" in os.environ)
        stats["inherited"] = float(os.environ.get("FRAZIL_TEST_KEEP") == "kept")
        stats["inherited_too"] = float(os.environ.get("FRAZIL_TEST_KEEP_TOO") == "too")
        stats["cwd_is_workdir"] = float(os.path.samefile(os.getcwd(), self.workdir))
        stats["handlers"] = len(logging.getLogger().handlers)
        stats["sigusr1_default"] = float(signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL)
        stats["path_has_mess"] = float("/mess" in sys.path)
        stats["filters"] = len(warnings.filters)
        print(f"run {len(COUNTER)} prints")
        if self.params["mess"]:
            os.environ["FRAZIL_TEST_MESS"] = "1"
            os.environ["FRAZIL_TEST_KEEP"] = "changed"
            del os.environ["FRAZIL_TEST_KEEP_TOO"]
            os.chdir("/")
            sys.path.append("/mess")
            logging.getLogger().addHandler(logging.NullHandler())
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
            warnings.simplefilter("ignore")
            sys.stdout = open(os.devnull, "w")
        if self.params["thread"]:
            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        if self.param_float("burn"):
            end = time.process_time() + self.param_float("burn")
            while time.process_time() < end:
                pass
        if int(self.params["allocate"]):
            held = bytearray(int(self.params["allocate"]) * 1024 * 1024)
            held[::4096] = b"x" * len(held[::4096])
            del held
        if self.params["importing"]:
            __import__(str(self.params["importing"]))
        if self.params["odd_stats"]:
            stats[("a", "tuple")] = 1.0
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "stateful.py").write_text(STATEFUL)
    return code


def run(
    tmp_path: Path, code: Path, *, fails: bool = False, **params: object
) -> tuple[classrun.Ended, dict[str, float]]:
    """One class run through the pilot's module host, as the runner makes it."""
    workdir = tmp_path / f"w{len(list(tmp_path.glob('w*')))}"
    workdir.mkdir()
    handle = classrun.start(classrun.ClassRun(
        name="s", class_name="stateful:Stateful", params=dict(params), workdir=str(workdir),
        stdout=str(workdir / "out"), stderr=str(workdir / "err"),
        sys_path=(str(code), *sys.path),
    ))  # fmt: skip
    ended = handle.wait()
    assert ended.finished
    assert (ended.error is not None) == fails, ended.error
    return ended, ended.stats


def test_a_worker_takes_run_after_run_each_with_the_code_imported_afresh(tmp_path, code):
    """The module's own state starts again with every run, in the same worker."""
    first, a = run(tmp_path, code)
    second, b = run(tmp_path, code)
    assert a["counter"] == b["counter"] == 1  # the module was imported again
    assert a["pid"] == b["pid"] != os.getpid()  # by the same worker
    assert first.retired == second.retired == ""


def test_what_a_run_changes_in_the_process_is_put_back(tmp_path, code, monkeypatch):
    # variables the host inherited, which a run changes and deletes (a host of its own, which
    # starts with them)
    monkeypatch.setenv("FRAZIL_TEST_KEEP", "kept")
    monkeypatch.setenv("FRAZIL_TEST_KEEP_TOO", "too")
    host = classrun.Host()
    monkeypatch.setattr(classrun, "_host", host)
    try:
        _check_put_back(tmp_path, code)
    finally:
        if host._proc is not None and host._proc.stdin is not None:
            host._proc.stdin.close()  # the host ends with its request pipe
            host._proc.wait(timeout=10)


def _check_put_back(tmp_path: Path, code: Path) -> None:
    _, before = run(tmp_path, code)
    _, messy = run(tmp_path, code, mess=True)
    ended, after = run(tmp_path, code)
    assert messy["pid"] == after["pid"] and ended.retired == ""
    assert before["inherited"] == before["inherited_too"] == 1.0
    keys = ("env", "inherited", "inherited_too", "cwd_is_workdir", "handlers", "sigusr1_default")
    for key in (*keys, "path_has_mess"):
        assert after[key] == before[key], key
    assert after["filters"] == before["filters"]
    assert after["cwd_is_workdir"] == 1.0 and after["env"] == 0.0
    # the messy run replaced sys.stdout; the next one's prints still reach its own file
    assert (tmp_path / "w2" / "out").read_text() == "run 1 prints\n"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"thread": True}, "left a thread"),
        ({"importing": "yaml"}, "which cannot be imported afresh"),  # yaml, or what it loads
        ({"importing": "no_such_module_here", "fails": True}, "the run failed"),
    ],
)
def test_a_worker_retires_when_a_run_leaves_what_it_cannot_put_back(tmp_path, code, params, reason):
    ended, retiring = run(tmp_path, code, **params)
    assert reason in ended.retired
    _, before = run(tmp_path, code)
    _, after = run(tmp_path, code)
    assert retiring["pid"] != before["pid"] == after["pid"]  # a new worker, which goes on
    assert before["counter"] == after["counter"] == 1


def test_a_standard_library_import_keeps_the_worker(tmp_path, code):
    ended, before = run(tmp_path, code, importing="fractions")
    assert ended.retired == ""
    _, after = run(tmp_path, code)
    assert after["pid"] == before["pid"]


def test_cpu_time_and_peak_memory_are_each_runs_own(tmp_path, code):
    busy, a = run(tmp_path, code, burn=0.3, allocate=300)
    quiet, b = run(tmp_path, code)
    assert a["pid"] == b["pid"]
    assert busy.cpu_time >= 0.25 and quiet.cpu_time < 0.1
    assert busy.max_memory >= 0.28 and quiet.max_memory < 0.2


def test_a_late_stop_never_reaches_the_next_run_of_the_same_worker(tmp_path, code):
    """Stopping is asked of the host for one run: once that run ended, the worker's next run
    (another task's) is not terminated by it."""
    workdir = tmp_path / "late"
    workdir.mkdir()

    def start(number: int, **params: object) -> classrun.Handle:
        return classrun.start(classrun.ClassRun(
            name="s", class_name="stateful:Stateful", params=dict(params),
            workdir=str(workdir), stdout=str(workdir / "out"), stderr=str(workdir / "err"),
            sys_path=(str(code), *sys.path),
        ))  # fmt: skip

    first = start(1)
    assert first.wait().status == 0
    second = start(2, burn=1.0)
    assert second.pid == first.pid  # the same worker
    first.stop()  # late: its run is over
    ended = second.wait()
    assert ended.status == 0 and ended.cpu_time >= 0.9
    third = start(3, burn=30.0)
    third.stop()
    ended = third.wait()
    assert os.WTERMSIG(ended.status) == 15 and not ended.finished  # a stop in time ends it


def test_the_pilots_own_modules_keep_the_worker(tmp_path, code):
    """A class that uses more of the pilot (here its checksums) does not cost a fork a run."""
    ended, before = run(tmp_path, code, importing="frazil.pilot.checksum")
    assert ended.retired == ""
    _, after = run(tmp_path, code)
    assert after["pid"] == before["pid"]


def test_statistics_json_cannot_carry_fail_the_run_not_the_worker(tmp_path, code):
    ended, stats = run(tmp_path, code, odd_stats=True, fails=True)
    assert "its statistics cannot be sent" in str(ended.error) and stats == {}
    _, after = run(tmp_path, code)
    assert after["counter"] == 1
