"""The pbs plugin (OpenPBS and Torque), checked without a server (none can run here).

The scripts it writes are checked line by line and their shell part is run with ``/bin/sh``
(PBS directives are comments to the shell); its commands go through a fake runner at the
``run_command`` boundary; its parsers read recorded ``qstat`` output from
``tests/data/batch/pbs`` (see the README there for where each sample comes from).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from frazil.batch import base, load_plugin
from frazil.batch.base import BatchState, JobRequest
from frazil.batch.pbs import NATIVE_STATES, PbsPlugin, parse_status, parse_submit, read_jobs
from frazil.batch.run import CommandResult
from frazil.errors import BatchCommandError, BatchError
from frazil.testing import FakeRunner
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "batch" / "pbs"
OPENPBS = (DATA / "qstat_openpbs.json").read_text()
TORQUE = (DATA / "qstat_torque.txt").read_text()
TRICKY = ["a b", "it's", 'say "hi"', "$HOME", "`id`", ";exit 3", "*", ""]
SHOW = (
    "import json, os, sys; print(json.dumps([os.getcwd(), sys.argv[1:], os.environ['GREETING']]))"
)


def realistic(tmp_path: Path, **fields: Any) -> JobRequest:
    workdir = tmp_path / "pilot-7"
    values: dict[str, Any] = {
        "name": "pilot-7",
        "argv": [sys.executable, "-c", SHOW, *TRICKY],
        "workdir": workdir,
        "stdout": workdir / "out.txt",
        "stderr": workdir / "err.txt",
        "cpu": 2,
        "gpu": 1,
        "memory": 4.0,
        "disk": 10.0,
        "walltime": 1.5,
        "env": {"GREETING": "hello 'world' \"q\" $HOME", "FRAZIL_SITE": "umd"},
    }
    return JobRequest(**{**values, **fields})


def header(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#PBS")]


def test_an_openpbs_script_asks_for_what_the_request_needs(tmp_path: Path) -> None:
    plugin = PbsPlugin(
        queue="gpu",
        account="icecube",
        extra=["#PBS -l place=excl", "#PBS -m n"],
        skip=["#PBS -S"],
        runner=FakeRunner(),
    )
    request = realistic(tmp_path, extra=("#PBS -p 10",))
    path = plugin.write_script(request)
    assert path == request.workdir / "pilot-7.pbs"
    assert header(path.read_text()) == [
        "#PBS -N frazil-pilot-7",
        "#PBS -l select=1:ncpus=2:mem=4gb:ngpus=1",
        "#PBS -l walltime=01:30:00",
        f"#PBS -o {request.stdout}",
        f"#PBS -e {request.stderr}",
        "#PBS -q gpu",
        "#PBS -A icecube",
        "#PBS -l place=excl",  # the site's extra lines, then the request's
        "#PBS -m n",
        "#PBS -p 10",
    ]
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/bin/sh"
    assert lines[1 : len(header(path.read_text())) + 1] == header(path.read_text())


def test_a_torque_script_uses_nodes_ppn_and_a_separate_mem(tmp_path: Path) -> None:
    plugin = PbsPlugin(flavor="torque", runner=FakeRunner())
    request = realistic(tmp_path, memory=0.5, walltime=26.0, stderr=tmp_path / "pilot-7/out.txt")
    assert header(plugin.render_script(request)) == [
        "#PBS -N frazil-pilot-7",
        "#PBS -S /bin/sh",
        "#PBS -l nodes=1:ppn=2:gpus=1",
        "#PBS -l mem=512mb",
        "#PBS -l walltime=26:00:00",
        f"#PBS -o {request.stdout}",
        "#PBS -j oe",  # one file for both streams
    ]
    no_gpu = header(plugin.render_script(realistic(tmp_path, gpu=0, cpu=1)))
    assert "#PBS -l nodes=1:ppn=1" in no_gpu


def test_the_script_body_runs_the_argv_in_the_workdir_with_the_env(tmp_path: Path) -> None:
    # Directives are comments to the shell, so the script runs as-is outside PBS.
    request = realistic(tmp_path)
    path = PbsPlugin(runner=FakeRunner()).write_script(request)
    done = subprocess.run(["/bin/sh", str(path)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [str(request.workdir), TRICKY, request.env["GREETING"]]


@pytest.mark.parametrize("where", ["stdout", "stderr"])
def test_paths_qsub_would_split_are_refused_before_anything_runs(
    tmp_path: Path, where: str
) -> None:
    runner = FakeRunner()
    bad = realistic(tmp_path, **{where: tmp_path / "with space" / "out"})
    with pytest.raises(BatchError, match="#PBS"):
        PbsPlugin(runner=runner).submit([realistic(tmp_path / "ok"), bad])
    assert runner.calls == []


def test_submit_runs_qsub_per_script_and_returns_the_printed_ids(tmp_path: Path) -> None:
    runner = FakeRunner([(DATA / "qsub_openpbs.txt").read_text(), "1235.pbs-server\n"])
    first, second = realistic(tmp_path / "1"), realistic(tmp_path / "2", name="pilot-8")
    assert PbsPlugin(runner=runner).submit([first, second]) == [
        "1234.pbs-server",
        "1235.pbs-server",
    ]
    assert runner.argvs == [
        ["qsub", str(first.workdir / "pilot-7.pbs")],
        ["qsub", str(second.workdir / "pilot-8.pbs")],
    ]
    assert runner.calls[0][1]["cwd"] == first.workdir
    torque = FakeRunner([(DATA / "qsub_torque.txt").read_text()])
    assert PbsPlugin(flavor="torque", runner=torque).submit([first]) == ["2001.torque.example.org"]


def test_a_failed_qsub_raises_with_its_command_and_deletes_the_ones_before(
    tmp_path: Path,
) -> None:
    refusal = (170, "", "qsub: Unknown queue\n")
    runner = FakeRunner(["1234.pbs-server\n", refusal, ""])
    plugin = PbsPlugin(qsub="/opt/pbs/bin/qsub", runner=runner)
    with pytest.raises(BatchCommandError) as caught:
        plugin.submit([realistic(tmp_path / "1"), realistic(tmp_path / "2")])
    assert caught.value.argv == ["/opt/pbs/bin/qsub", str(tmp_path / "2/pilot-7/pilot-7.pbs")]
    assert caught.value.returncode == 170
    assert caught.value.stderr == "qsub: Unknown queue\n"
    assert runner.argvs[-1] == ["qdel", "1234.pbs-server"]


def test_parse_submit_reads_the_id_or_refuses() -> None:
    assert parse_submit("1234.pbs-server\n") == "1234.pbs-server"
    assert parse_submit("5678\n") == "5678"
    for bad in ["", "qsub: submit error\n"]:
        with pytest.raises(BatchError):
            parse_submit(bad)


def test_openpbs_json_maps_every_state_and_exit_status() -> None:
    found = parse_status(OPENPBS, "openpbs")
    seen = {i.partition(".")[0]: (s.native, s.state, s.exit_code) for i, s in found.items()}
    assert seen == {
        "1201": ("Q", BatchState.PENDING, None),
        "1202": ("R", BatchState.RUNNING, None),
        "1203": ("H", BatchState.HELD, None),
        "1204": ("E", BatchState.RUNNING, None),  # exiting: files may still be on the way
        "1205": ("F", BatchState.COMPLETED, 0),
        "1206": ("F", BatchState.FAILED, 3),
        "1207": ("F", BatchState.FAILED, 128 + 15),  # 256 + SIGTERM
        "1208": ("F", BatchState.TIMEOUT, None),  # -29: JOB_EXEC_KILL_WALLTIME
        "1209": ("F", BatchState.CANCELLED, None),  # never ran: deleted while queued
        "1210": ("W", BatchState.PENDING, None),
        "1211": ("S", BatchState.HELD, None),
        "1212": ("M", BatchState.VANISHED, None),
        "1213": ("F", BatchState.FAILED, None),  # -11 is a rerun in OpenPBS, not a walltime
        "1214": ("R", BatchState.RUNNING, None),
        "1215": ("T", BatchState.PENDING, None),
        "1216[]": ("B", BatchState.RUNNING, None),
        "1216[1]": ("X", BatchState.COMPLETED, 0),
        "1217": ("U", BatchState.HELD, None),
    }
    assert found["1201.pbs-server"].reason.startswith("Not Running")


def test_torque_text_maps_every_state_and_exit_status() -> None:
    found = parse_status(TORQUE, "torque")
    seen = {i.partition(".")[0]: (s.native, s.state, s.exit_code) for i, s in found.items()}
    assert seen == {
        "2001": ("Q", BatchState.PENDING, None),
        "2002": ("R", BatchState.RUNNING, None),
        "2003": ("C", BatchState.COMPLETED, 0),
        "2004": ("C", BatchState.FAILED, 1),
        "2005": ("C", BatchState.TIMEOUT, None),  # -11: JOB_EXEC_OVERLIMIT_WT
        "2006": ("C", BatchState.FAILED, 128 + 15),
        "2007": ("H", BatchState.HELD, None),
        "2008": ("E", BatchState.RUNNING, None),
        "2009": ("W", BatchState.PENDING, None),
        "2010": ("R", BatchState.RUNNING, None),
    }
    (first,) = [job for job in read_jobs(TORQUE, "torque") if job.id.startswith("2001.")]
    assert (first.name, first.owner) == ("frazil-pilot-1", "frazil@login1.example.org")


def test_the_recorded_outputs_cover_the_whole_state_table() -> None:
    natives = {s.native for s in parse_status(OPENPBS, "openpbs").values()}
    natives |= {s.native for s in parse_status(TORQUE, "torque").values()}
    assert natives >= set(NATIVE_STATES)


def test_a_comment_about_the_walltime_is_a_timeout() -> None:
    # Synthetic: the exit status alone does not say why a job died (143 = 128 + SIGTERM).
    job = {"Job_Name": "frazil-x", "job_state": "F", "Exit_status": 143}
    job["comment"] = "Job run at Mon Mar 04 at 10:00 on (node1:ncpus=2) and exceeded walltime"
    text = json.dumps({"pbs_server": "s", "Jobs": {"1.s": job}})
    assert parse_status(text, "openpbs")["1.s"].state is BatchState.TIMEOUT


def test_an_unknown_job_state_is_unknown_with_one_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "_warned_codes", set())  # earlier tests may have warned
    text = (DATA / "qstat_openpbs_unknown_state.json").read_text()
    with caplog.at_level(logging.WARNING, logger="frazil.batch.base"):
        first, again = parse_status(text, "openpbs"), parse_status(text, "openpbs")
    assert first["1299.pbs-server"].state is again["1299.pbs-server"].state is BatchState.UNKNOWN
    assert [r.getMessage() for r in caplog.records] == [
        "pbs: unknown native job state 'Z', reported as UNKNOWN"
    ]


def test_empty_and_unreadable_qstat_output() -> None:
    assert parse_status((DATA / "qstat_openpbs_empty.json").read_text(), "openpbs") == {}
    assert parse_status("", "openpbs") == parse_status("", "torque") == {}
    with pytest.raises(BatchError):
        parse_status("qstat: cannot connect to server", "openpbs")
    with pytest.raises(BatchError):
        parse_status("[]", "openpbs")
    with pytest.raises(BatchError):
        parse_status("", "slurm")


def test_openpbs_status_is_one_qstat_with_history_for_all_ids() -> None:
    unknown = (153, OPENPBS, "qstat: Unknown Job Id 9999.pbs-server\n")
    runner = FakeRunner([unknown])
    ids = ["1205.pbs-server", "1208.pbs-server.example.org", "9999.pbs-server", "", "../x"]
    found = PbsPlugin(runner=runner).status(ids)
    assert list(found) == ids
    assert found["1205.pbs-server"].state is BatchState.COMPLETED
    # The same job under a longer server name is still found, by its sequence number.
    assert found["1208.pbs-server.example.org"].state is BatchState.TIMEOUT
    assert found["1208.pbs-server.example.org"].id == "1208.pbs-server.example.org"
    assert {found[i].state for i in ids[2:]} == {BatchState.VANISHED}
    asked = ["1205.pbs-server", "1208.pbs-server.example.org", "9999.pbs-server"]
    assert runner.argvs == [["qstat", "-x", "-f", "-F", "json", *asked]]


def test_torque_status_is_qstat_f_without_x_and_without_no_complete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PBS_QSTAT_NO_COMPLETE", "1")
    runner = FakeRunner([TORQUE])
    found = PbsPlugin(flavor="torque", runner=runner).status(["2003.torque.example.org"])
    assert found["2003.torque.example.org"].state is BatchState.COMPLETED
    ((argv, kwargs),) = runner.calls
    assert argv == ["qstat", "-f", "2003.torque.example.org"]  # Torque's -x means XML
    assert "PBS_QSTAT_NO_COMPLETE" not in kwargs["env"]
    assert kwargs["env"]["PATH"]


def test_a_status_failure_other_than_unknown_ids_raises() -> None:
    runner = FakeRunner([(1, "", "Connection refused\nqstat: cannot connect to server pbs\n")])
    with pytest.raises(BatchCommandError, match="cannot connect"):
        PbsPlugin(runner=runner).status(["1201.pbs-server"])
    assert PbsPlugin(runner=FakeRunner()).status([""])[""].state is BatchState.VANISHED


def test_cancel_is_qdel_and_ignores_jobs_that_are_gone_or_finished() -> None:
    gone = (153, "", "qdel: Unknown Job Id 9999.pbs-server\nqdel: Job has finished\n")
    runner = FakeRunner([gone, (15, "", "qdel: Unauthorized Request  1202.pbs-server\n")])
    plugin = PbsPlugin(runner=runner)
    plugin.cancel(["9999.pbs-server", "1205.pbs-server", "no id"])
    with pytest.raises(BatchCommandError, match="Unauthorized"):
        plugin.cancel(["1202.pbs-server"])
    assert runner.argvs == [
        ["qdel", "9999.pbs-server", "1205.pbs-server"],
        ["qdel", "1202.pbs-server"],
    ]


def test_openpbs_clean_queue_deletes_this_users_unfinished_unknown_frazil_jobs() -> None:
    runner = FakeRunner([OPENPBS, ""])
    plugin = PbsPlugin(user="frazil", runner=runner)
    orphans = plugin.clean_queue(["1201.pbs-server", "1202"])
    assert orphans == [
        "1203.pbs-server",
        "1204.pbs-server",
        "1210.pbs-server",
        "1211.pbs-server",
        "1215.pbs-server",
        "1216[].pbs-server",
        "1217.pbs-server",
    ]  # not alice's 1214, nor the finished, moved or known ones
    assert runner.argvs == [["qstat", "-f", "-F", "json"], ["qdel", *orphans]]


def test_torque_clean_queue_lists_with_qstat_f() -> None:
    runner = FakeRunner([TORQUE, ""])
    orphans = PbsPlugin(flavor="torque", user="frazil", runner=runner).clean_queue([])
    assert orphans == [
        "2001.torque.example.org",
        "2002.torque.example.org",
        "2007.torque.example.org",
        "2008.torque.example.org",
        "2009.torque.example.org",
    ]
    assert runner.argvs == [["qstat", "-f"], ["qdel", *orphans]]


def test_the_constructor_only_stores_settings() -> None:
    def no_commands(argv: Sequence[str], **kwargs: Any) -> CommandResult:
        raise AssertionError(f"the constructor ran {argv}")

    plugin = load_plugin("pbs::torque", runner=no_commands, queue="batch")
    assert isinstance(plugin, PbsPlugin)
    assert (plugin.flavor, plugin.queue) == ("torque", "batch")
    assert PbsPlugin(runner=no_commands).flavor == "openpbs"
    for bad in [{"flavor": "sge"}, {"queue": "two words"}, {"extra": ["#PBS -l\nx"]}]:
        with pytest.raises(BatchError):
            PbsPlugin(**bad)
