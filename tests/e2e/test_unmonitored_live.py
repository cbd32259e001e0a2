"""``frazil run`` on a real Slurm: no server, no database, dependencies held by Slurm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import MODULE, config, task

pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True)
def _slurm() -> None:
    if not os.environ.get("FRAZIL_TEST_SLURM"):
        pytest.skip("FRAZIL_TEST_SLURM is not set: no slurm here (scripts/batch-systems start)")


def _run(tmp_path: Path, cfg: dict, jobs: int) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = subprocess.run(
        [sys.executable, "-m", "frazil", "run", str(path), "--jobs", str(jobs), "--batch", "slurm",
         "--dir", str(tmp_path / "run"), "-s", f"module={MODULE}",
         "-s", f"storage=file://{tmp_path / 'storage'}"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def _result(folder: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    path = folder / "result.json"
    while time.monotonic() < deadline:
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("status") in ("complete", "failed"):
                return data
        time.sleep(0.5)
    raise AssertionError(f"no final result in {folder}")


def test_jobs_run_with_their_dependencies_held_by_slurm(tmp_path):
    out = {"remote": "$system(storage)/$args(job)/a.txt", "local": "a.txt"}
    cfg = config(
        task("first", "--out a.txt --sleep 2", data=[{**out, "movement": "output"}]),
        task("second", "--out b.txt --input a.txt", depends=("first",),
             data=[{**out, "movement": "input"}]),
    )  # fmt: skip
    _run(tmp_path, cfg, jobs=2)
    for job in range(2):
        first = _result(tmp_path / "run" / f"job-{job:06d}" / "first")
        second = _result(tmp_path / "run" / f"job-{job:06d}" / "second")
        assert first["status"] == second["status"] == "complete"
        assert second["started"] >= first["time"] - 1  # the dependent began after its parent ended
        assert (tmp_path / "storage" / str(job) / "a.txt").exists()


def test_a_failed_task_keeps_its_dependents_from_running(tmp_path):
    cfg = config(
        task("broken", f"--out x --fail-times 9 --marker {tmp_path / 'm'}"),
        task("after", "--out y", depends=("broken",)),
    )
    _run(tmp_path, cfg, jobs=1)
    folder = tmp_path / "run" / "job-000000"
    assert _result(folder / "broken")["status"] == "failed"
    time.sleep(5)
    assert not (folder / "after" / "result.json").exists()
    squeue = ["squeue", "-h", "-o", "%j"]
    names = subprocess.run(squeue, capture_output=True, text=True, check=True).stdout
    assert "frazil-run-0-after" not in names  # Slurm dropped it: its dependency can never hold
