"""Slurm and SGE: submit scripts, the commands run, and parsing of recorded real output.

The live checks are in test_contract.py (markers ``slurm`` and ``sge``); these need neither.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from frazil.batch.base import BatchState, JobRequest
from frazil.batch.run import CommandResult
from frazil.batch.sge import SgePlugin, parse_qacct, parse_qstat_xml
from frazil.batch.slurm import SlurmPlugin, parse_sacct, parse_scontrol
from frazil.errors import BatchCommandError, BatchError

DATA = Path(__file__).parent.parent / "data" / "batch"


class Recorder:
    """A fake at the run_command boundary: records argv, answers from a table."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv, *, timeout, **_):
        self.calls.append(list(argv))
        for prefix, out in self.answers.items():
            if " ".join(argv).startswith(prefix):
                return CommandResult(list(argv), 0, out, "", 0.01)
        raise BatchCommandError(list(argv), 1, "", "not expected here")


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
    runner = Recorder({
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
    assert runner.calls[0][:2] == ["sbatch", "--parsable"]
    assert runner.calls[2] == [
        "sacct",
        "-c",
        "-P",
        "-n",
        "-o",
        "JobID,State,ExitCode",
        "-j",
        "43,44",
    ]
    assert runner.calls[-1] == ["scancel", "45"]


def test_slurm_waits_before_calling_a_missing_job_vanished(tmp_path):
    now = [0.0]
    runner = Recorder({"scontrol show job -o": "", "sacct": ""})
    plugin = SlurmPlugin(runner=runner, vanish_after=60, clock=lambda: now[0])
    assert plugin.status(["5"])["5"].state is BatchState.UNKNOWN
    now[0] = 61.0
    assert plugin.status(["5"])["5"].state is BatchState.VANISHED


def test_slurm_refuses_unknown_variants_and_missing_ids(tmp_path):
    with pytest.raises(BatchError, match="no variant"):
        SlurmPlugin(variant="turbo")
    with pytest.raises(BatchCommandError, match="no job id"):
        SlurmPlugin(runner=Recorder({"sbatch": "\n"})).submit([request(tmp_path)])


def test_recorded_scontrol_output():
    found = parse_scontrol((DATA / "slurm" / "scontrol-show-job-o.txt").read_text())
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
    found = parse_sacct((DATA / "slurm" / "sacct-c.txt").read_text())
    assert {k: (v.state, v.exit_code) for k, v in found.items()} == {
        "14": (BatchState.COMPLETED, 0),
        "15": (BatchState.FAILED, 3),
        "17": (BatchState.CANCELLED, 0),
        "20": (BatchState.CANCELLED, 0),
    }


def test_sge_script_lines(tmp_path):
    plugin = SgePlugin(queue="all.q", project="ice", memory_resource="h_vmem", skip=["-S"])
    lines = plugin.write_script(request(tmp_path, after=("8",), gpu=0)).read_text().splitlines()
    for line in ("-N frazil-7-1", "-l h_rt=1:30:00", "-pe smp 2", "-q all.q", "-P ice",
                 "-l h_vmem=2048M", "-hold_jid 8"):  # fmt: skip
        assert f"#$ {line}" in lines
    assert not any(x.startswith("#$ -S") for x in lines)
    assert "export CUDA_VISIBLE_DEVICES=''" in lines  # a CPU task never sees a GPU
    gpu = plugin.write_script(request(tmp_path)).read_text()
    assert "#$ -l gpu=1" in gpu and "CUDA_VISIBLE_DEVICES" not in gpu


def test_sge_commands(tmp_path):
    xml = (DATA / "sge" / "qstat-xml.txt").read_text()
    runner = Recorder(
        {"qsub": "77\n", "qstat": xml, "qacct": (DATA / "sge" / "qacct-j.txt").read_text()}
    )
    plugin = SgePlugin(runner=runner, vanish_after=0)
    assert plugin.submit([request(tmp_path)]) == ["77"]
    assert runner.calls[0][:4] == ["qsub", "-terse", "-w", "e"]
    ids = ["18", "21", "15", "999"]
    found = plugin.status(ids)
    expected = [BatchState.RUNNING, BatchState.PENDING, BatchState.TIMEOUT, BatchState.VANISHED]
    assert [found[i].state for i in ids] == expected


def test_recorded_qstat_and_qacct_output():
    queued = parse_qstat_xml((DATA / "sge" / "qstat-xml.txt").read_text())
    assert {k: v.state for k, v in queued.items()} == {
        "18": BatchState.RUNNING, "19": BatchState.RUNNING, "20": BatchState.RUNNING,
        "21": BatchState.PENDING, "22": BatchState.HELD,
    }  # fmt: skip
    done = parse_qacct((DATA / "sge" / "qacct-j.txt").read_text())
    assert (done["16"].state, done["16"].exit_code) == (BatchState.COMPLETED, 0)
    assert (done["14"].state, done["14"].exit_code) == (BatchState.FAILED, 3)
    assert done["15"].state is BatchState.TIMEOUT and "h_rt" in done["15"].reason
    assert (done["19"].state, done["19"].exit_code) == (BatchState.CANCELLED, 137)


@pytest.mark.parametrize(
    ("plugin", "submit", "printed", "cancel"),
    [
        (SlurmPlugin(), "sbatch", "4242\n", ["scancel", "4242"]),
        (SgePlugin(), "qsub", "4242\n", ["qdel", "4242"]),
    ],
)
def test_a_failed_submission_cancels_the_ones_before_it(tmp_path, plugin, submit, printed, cancel):
    calls: list[list[str]] = []

    def runner(argv, *, timeout, **_):
        calls.append(list(argv))
        if argv[0] == submit and sum(c[0] == submit for c in calls) == 2:
            raise BatchCommandError(list(argv), 1, "", "the queue is full")
        return CommandResult(list(argv), 0, printed if argv[0] == submit else "", "", 0.01)

    plugin.runner = runner
    first, second, third = (request(tmp_path / n) for n in "abc")
    with pytest.raises(BatchCommandError, match="the queue is full"):
        plugin.submit([first, second, third])
    assert [c[0] for c in calls] == [submit, submit, cancel[0]]  # the third never went in
    assert calls[-1] == cancel
    assert (tmp_path / "c" / "w").is_dir()  # every script was written before any submission
