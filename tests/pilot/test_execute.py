"""A module's process dies with its pilot: a real pilot process, killed outright."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    spec = {"requirements": {"time": 1}, "data": [], "trays": [
        {"name": "t", "iteration": 0, "modules": [module]}]}  # fmt: skip
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
