"""Slurm: submit scripts, the commands run, and parsing of recorded real output.

The live checks are in test_contract.py (marker ``slurm``); these need no Slurm.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from frazil.batch.base import BatchState, JobRequest
from frazil.batch.slurm import SlurmPlugin, parse_sacct, parse_scontrol
from frazil.errors import BatchCommandError, BatchError
from frazil.testing import FakeRunner

DATA = Path(__file__).parent.parent / "data" / "batch" / "slurm"


def request(tmp_path: Path, **fields) -> JobRequest:
    return JobRequest(
        name="frazil-7-1", argv=["python", "-m", "frazil.pilot", "--x", "a b"],
        workdir=tmp_path / "w", stdout=tmp_path / "w" / "out", stderr=tmp_path / "w" / "err",
        **{"cpu": 2, "gpu": 1, "memory": 4.0, "disk": 10.0, "walltime": 1.5, **fields},
    )  # fmt: skip


def test_slurm_script_lines_extra_skip_and_dependencies(tmp_path):
    plugin = SlurmPlugin(partition="gpu", account="ice", extra=["--exclusive"], skip=["--nodes"])
    text = plugin.write_script(request(tmp_path, after=("11", "12"), env={"A": "x y"})).read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/bin/sh"
    for line in ("--job-name=frazil-7-1", "--cpus-per-task=2", "--mem=4096M", "--time=01:30:00",
                 "--gres=gpu:1", "--partition=gpu", "--account=ice", "--exclusive",
                 "--dependency=afterok:11:12"):  # fmt: skip
        assert f"#SBATCH {line}" in lines
    assert not any("--nodes" in x for x in lines) and not any("--tmp" in x for x in lines)
    assert "export A='x y'" in lines
    assert lines[-1] == "exec python -m frazil.pilot --x 'a b'"
    assert "#SBATCH --tmp=10240M" in SlurmPlugin(request_disk=True).write_script(
        request(tmp_path)).read_text()  # fmt: skip


def test_slurm_commands(tmp_path):
    runner = FakeRunner(default=None, answers={
        "sbatch": "42;cluster\n",
        "scontrol show job -o": "JobId=42 JobName=x JobState=RUNNING Reason=None ExitCode=0:0\n",
        "sacct": "43|COMPLETED|0:0\n",
        "squeue": "42|frazil-7-1\n44|someone-else\n45|frazil-old\n",
        "scancel": "",
    })  # fmt: skip
    plugin = SlurmPlugin(runner=runner, vanish_after=0)
    assert plugin.submit([request(tmp_path)]) == ["42"]
    found = plugin.status(["42", "43", "44"])
    assert [found[i].state for i in ("42", "43", "44")] == [
        BatchState.RUNNING, BatchState.COMPLETED, BatchState.VANISHED]  # fmt: skip
    assert plugin.clean_queue(["42"]) == ["45"]
    assert runner.argvs[0][:2] == ["sbatch", "--parsable"]
    assert runner.argvs[2] == [
        "sacct",
        "-c",
        "-P",
        "-n",
        "-o",
        "JobID,State,ExitCode",
        "-j",
        "43,44",
    ]
    assert runner.argvs[-1] == ["scancel", "45"]


def test_slurm_waits_before_calling_a_missing_job_vanished(tmp_path):
    now = [0.0]
    runner = FakeRunner(answers={"scontrol show job -o": "", "sacct": ""}, default=None)
    plugin = SlurmPlugin(runner=runner, vanish_after=60, clock=lambda: now[0])
    assert plugin.status(["5"])["5"].state is BatchState.UNKNOWN
    now[0] = 61.0
    assert plugin.status(["5"])["5"].state is BatchState.VANISHED


def test_slurm_refuses_unknown_variants_and_missing_ids(tmp_path):
    with pytest.raises(BatchError, match="no variant"):
        SlurmPlugin(variant="turbo")
    with pytest.raises(BatchCommandError, match="no job id"):
        SlurmPlugin(runner=FakeRunner(["\n"])).submit([request(tmp_path)])


def test_recorded_scontrol_output():
    found = parse_scontrol((DATA / "scontrol-show-job-o.txt").read_text())
    expect = {
        "14": (BatchState.COMPLETED, 0),
        "15": (BatchState.FAILED, 3),
        "16": (BatchState.RUNNING, 0),
        "17": (BatchState.CANCELLED, 143),
        "18": (BatchState.RUNNING, 0),
        "19": (BatchState.PENDING, 0),
        "20": (BatchState.CANCELLED, 0),
        "10": (BatchState.TIMEOUT, 143),
    }
    for job, (state, code) in expect.items():
        assert (found[job].state, found[job].exit_code) == (state, code), job
    assert found["20"].reason == "DependencyNeverSatisfied"
    assert found["19"].reason == "Resources"


def test_recorded_sacct_output():
    found = parse_sacct((DATA / "sacct-c.txt").read_text())
    assert {k: (v.state, v.exit_code) for k, v in found.items()} == {
        "14": (BatchState.COMPLETED, 0),
        "15": (BatchState.FAILED, 3),
        "17": (BatchState.CANCELLED, 0),
        "20": (BatchState.CANCELLED, 0),
    }
