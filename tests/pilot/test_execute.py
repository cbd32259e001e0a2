"""A module's process dies with its pilot: a real pilot process, killed outright."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from frazil.batch.local_runner import pid_alive
from tests.conftest import ROOT

TREE = ROOT / "tests" / "data" / "process_tree.py"


def wait(check, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_sigkilled_pilot_takes_its_module_along(tmp_path: Path) -> None:
    """The module (which ignores SIGTERM, in a session of its own) gets SIGKILL when the
    pilot dies: no module runs on beside the task's retry."""
    pidfile = tmp_path / "pids"
    module = {
        "name": "tree", "src": str(TREE), "class_": "", "url": "",
        "argv": [str(pidfile), "1"], "env_shell": "", "env_clear": False,
        "configs": {}, "parameters": {},
    }  # fmt: skip
    spec = {
        "name": "tree", "job": 0, "index": 0, "depends": [], "container": "", "batchsys": {},
        "requirements": {"cpu": 1, "gpu": 0, "memory": 1, "disk": 1, "time": 1}, "data": [],
        "trays": [{"name": "t", "iteration": 0, "env": None, "modules": [module]}],
    }  # fmt: skip
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    pilot = subprocess.Popen(
        [sys.executable, "-m", "frazil.pilot", "--spec", str(tmp_path / "spec.json"),
         "--workdir", str(tmp_path / "work")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pids: list[int] = []
    try:
        assert wait(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
        pids = [int(p) for p in pidfile.read_text().split()]
        (module_pid,) = pids
        stat = Path(f"/proc/{module_pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[1]) == pilot.pid  # the pilot's own child
        assert os.getsid(module_pid) != os.getsid(pilot.pid)
        pilot.kill()
        pilot.wait()
        assert wait(lambda: not pid_alive(module_pid), 3.0), "the module outlived its pilot"
    finally:
        pilot.kill()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


VERSIONED = """\
import os
import sys

from frazil.pilot.modules import Module, Param


class Versioned(Module):
    parameters = {"sleep": Param(0.0, "seconds to wait")}

    def run(self, stats):
        print("version {v} prints to stdout")
        print("version {v} complains on stderr", file=sys.stderr)
        os.system("echo a subprocess of version {v}")
        stats["version"] = {v}
        stats["pid"] = os.getpid()
        if self.param_float("sleep"):
            import time

            time.sleep(self.param_float("sleep"))
"""


def versioned(v: int) -> str:
    return VERSIONED.replace("{v}", str(v))


def make_runner(tmp_path: Path, name: str):
    from frazil.pilot.execute import Runner

    workdir, logs = tmp_path / name / "task", tmp_path / name / "logs"
    workdir.mkdir(parents=True)
    logs.mkdir()
    return Runner(workdir, logs / "stdout", logs / "stderr"), logs


def test_each_class_run_imports_the_code_afresh_and_its_output_goes_to_the_task(tmp_path):
    """Two tasks in one pilot process, the module edited in between: the second runs the
    new code; what each prints (and its subprocesses) is in its own task's files."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "versioned.py").write_text(versioned(1))
    first, logs1 = make_runner(tmp_path, "first")
    _, stats = first.python_class("v", "versioned:Versioned", {}, paths=[code])
    assert stats["version"] == 1.0 and stats["pid"] != os.getpid()
    (code / "versioned.py").write_text(versioned(2) + "# edited\n")
    second, logs2 = make_runner(tmp_path, "second")
    _, stats = second.python_class("v", "versioned:Versioned", {}, paths=[code])
    assert stats["version"] == 2.0
    assert "versioned" not in sys.modules  # the pilot itself never imported it
    for logs, v in ((logs1, 1), (logs2, 2)):
        out, err = (logs / "stdout").read_text(), (logs / "stderr").read_text()
        assert f"version {v} prints to stdout" in out
        assert f"a subprocess of version {v}" in out
        assert f"version {v} complains on stderr" in err and "--- module v ---" in err
    assert not list(logs2.glob("*.json"))  # the result file is gone


def test_an_edit_of_the_same_size_within_the_second_is_run(tmp_path):
    """Compiled code is kept by the source's content, not by its modification time (whole
    seconds) and size as in ``__pycache__``: an edit that keeps both is still seen."""
    code = tmp_path / "code"
    code.mkdir()
    source = code / "versioned.py"
    runner, _ = make_runner(tmp_path, "t")
    for v in (4, 5, 4, 6):
        source.write_text(versioned(v))
        os.utime(source, ns=(0, 10**9))  # the same modification time for every version
        _, stats = runner.python_class("v", "versioned:Versioned", {}, paths=[code])
        assert stats["version"] == float(v)
    assert not (code / "__pycache__").exists()  # nothing written beside the task's code


def test_an_idle_worker_killed_from_outside_is_replaced(tmp_path):
    """The host keeps workers waiting for requests; killed while they wait, the next run
    still starts (in a new worker) and the host keeps one ready again."""
    from frazil.pilot import classrun

    code = tmp_path / "code"
    code.mkdir()
    (code / "versioned.py").write_text(versioned(7))
    runner, _ = make_runner(tmp_path, "t")
    runner.python_class("v", "versioned:Versioned", {}, paths=[code])
    proc = classrun._host._proc
    assert proc is not None

    def children() -> set[int]:
        found = set()
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            found |= {int(p) for p in (task / "children").read_text().split()}
        return found

    assert wait(lambda: len(children()) >= 1)  # idle workers, waiting
    idle = children()
    for pid in idle:
        os.kill(pid, signal.SIGKILL)
    assert wait(lambda: not idle & children())
    _, stats = runner.python_class("v", "versioned:Versioned", {}, paths=[code])
    assert stats["version"] == 7.0 and stats["pid"] not in idle
    assert classrun._host._proc is proc  # the same host
    assert wait(lambda: len(children()) >= 1)


def test_a_class_run_fails_with_its_error_and_can_be_stopped(tmp_path):
    from frazil.pilot.execute import ModuleFailed

    code = tmp_path / "code"
    code.mkdir()
    (code / "versioned.py").write_text(versioned(3))
    runner, logs = make_runner(tmp_path, "t")
    with pytest.raises(ModuleFailed, match=r"unknown parameter\(s\) nope"):
        runner.python_class("v", "versioned:Versioned", {"nope": 1}, paths=[code])
    with pytest.raises(ModuleFailed, match="cannot import 'nothere'"):
        runner.python_class("v", "nothere:X", {}, paths=[code])
    stopper = threading.Timer(1.0, runner.stop)
    stopper.start()
    started = time.monotonic()
    with pytest.raises(ModuleFailed, match="killed by signal 15"):
        runner.python_class("v", "versioned:Versioned", {"sleep": 60}, paths=[code])
    assert time.monotonic() - started < 30
    assert (logs / "stderr").read_text().count("--- module v ---") == 3  # one per run


SLEEPER = """\
import os
import time

from frazil.pilot.modules import Module


class Sleeper(Module):
    def run(self, stats):
        with open(os.environ["PIDFILE"], "w") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(600)
"""


def test_a_sigkilled_pilot_takes_its_class_modules_process_along(tmp_path: Path) -> None:
    code = tmp_path / "sleeper.py"
    code.write_text(SLEEPER)
    pidfile = tmp_path / "pid"
    module = {
        "name": "s", "src": "", "class_": "sleeper:Sleeper", "url": str(code), "argv": [],
        "env_shell": "", "env_clear": False, "configs": {}, "parameters": {},
    }  # fmt: skip
    spec = {
        "name": "tree", "job": 0, "index": 0, "depends": [], "container": "", "batchsys": {},
        "requirements": {"cpu": 1, "gpu": 0, "memory": 1, "disk": 1, "time": 1}, "data": [],
        "trays": [{"name": "t", "iteration": 0, "env": None, "modules": [module]}],
    }  # fmt: skip
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    pilot = subprocess.Popen(
        [sys.executable, "-m", "frazil.pilot", "--spec", str(tmp_path / "spec.json"),
         "--workdir", str(tmp_path / "work")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PIDFILE": str(pidfile)},
    )  # fmt: skip
    pid = 0
    try:
        assert wait(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
        pid = int(pidfile.read_text())
        pilot.kill()
        pilot.wait()
        assert wait(lambda: not pid_alive(pid), 3.0), "the class module outlived its pilot"
    finally:
        pilot.kill()
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_stop_that_comes_before_the_module_exists_still_ends_it(tmp_path: Path) -> None:
    """A SIGTERM or a stale answer between the pilot's last check and the module's start
    must not leave the module to run to its end."""
    from frazil.pilot.execute import ModuleFailed, Runner

    runner = Runner(tmp_path, tmp_path / "stdout", tmp_path / "stderr")
    runner.stop()  # nothing runs yet
    started = time.monotonic()
    with pytest.raises(ModuleFailed, match="was killed by signal 15"):
        runner.subprocess("sleeper", ["sleep", "30"], {"PATH": os.environ["PATH"]})
    assert time.monotonic() - started < 10
