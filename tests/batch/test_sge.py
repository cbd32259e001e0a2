"""Son of Grid Engine: submit scripts, the commands run, and parsing of recorded real output.

The live checks are in test_contract.py (marker ``sge``); these need no Grid Engine.
"""

from __future__ import annotations

from pathlib import Path

from frazil.batch.base import BatchState, JobRequest
from frazil.batch.sge import SgePlugin, parse_qacct, parse_qstat_xml
from frazil.testing import FakeRunner

DATA = Path(__file__).parent.parent / "data" / "batch" / "sge"


def request(tmp_path: Path, **fields) -> JobRequest:
    return JobRequest(
        name="frazil-7-1", argv=["python", "-m", "frazil.pilot", "--x", "a b"],
        workdir=tmp_path / "w", stdout=tmp_path / "w" / "out", stderr=tmp_path / "w" / "err",
        **{"cpu": 2, "gpu": 1, "memory": 4.0, "disk": 10.0, "walltime": 1.5, **fields},
    )  # fmt: skip


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
    xml = (DATA / "qstat-xml.txt").read_text()
    qacct = (DATA / "qacct-j.txt").read_text()
    runner = FakeRunner(answers={"qsub": "77\n", "qstat": xml, "qacct": qacct}, default=None)
    plugin = SgePlugin(runner=runner, vanish_after=0)
    assert plugin.submit([request(tmp_path)]) == ["77"]
    assert runner.argvs[0][:4] == ["qsub", "-terse", "-w", "e"]
    ids = ["18", "21", "15", "999"]
    found = plugin.status(ids)
    expected = [BatchState.RUNNING, BatchState.PENDING, BatchState.TIMEOUT, BatchState.VANISHED]
    assert [found[i].state for i in ids] == expected


def test_recorded_qstat_and_qacct_output():
    queued = parse_qstat_xml((DATA / "qstat-xml.txt").read_text())
    assert {k: v.state for k, v in queued.items()} == {
        "18": BatchState.RUNNING, "19": BatchState.RUNNING, "20": BatchState.RUNNING,
        "21": BatchState.PENDING, "22": BatchState.HELD,
    }  # fmt: skip
    done = parse_qacct((DATA / "qacct-j.txt").read_text())
    assert (done["16"].state, done["16"].exit_code) == (BatchState.COMPLETED, 0)
    assert (done["14"].state, done["14"].exit_code) == (BatchState.FAILED, 3)
    assert done["15"].state is BatchState.TIMEOUT and "h_rt" in done["15"].reason
    assert (done["19"].state, done["19"].exit_code) == (BatchState.CANCELLED, 137)
