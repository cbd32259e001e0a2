"""The lsf plugin, checked without an LSF cluster (none can run here).

The scripts it writes are checked line by line and their shell part is run with ``/bin/sh``
(``#BSUB`` lines are comments to the shell); its commands go through a fake runner at the
``run_command`` boundary; its parser reads recorded ``bjobs -json`` output from
``tests/data/batch/lsf`` (see the README there for where each sample comes from).
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
from frazil.batch.lsf import FIELDS, NATIVE_STATES, LsfPlugin, parse_status, parse_submit
from frazil.batch.run import CommandResult
from frazil.errors import BatchCommandError, BatchError
from frazil.testing import FakeRunner
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "batch" / "lsf"
BJOBS = (DATA / "bjobs.json").read_text()
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
        "env": {"GREETING": "hello 'world' \"q\" $HOME", "FRAZIL_SITE": "desy"},
    }
    return JobRequest(**{**values, **fields})


def header(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#BSUB")]


def test_a_script_asks_for_what_the_request_needs(tmp_path: Path) -> None:
    plugin = LsfPlugin(
        queue="gpu",
        account="icecube",
        extra=['#BSUB -R "select[type==X86_64]"', "#BSUB -app pilot"],
        skip=["#BSUB -M"],
        runner=FakeRunner(),
    )
    request = realistic(tmp_path, extra=("#BSUB -sp 10",))
    path = plugin.write_script(request)
    assert path == request.workdir / "pilot-7.lsf"
    text = path.read_text()
    assert header(text) == [
        "#BSUB -J frazil-pilot-7",
        "#BSUB -n 2",
        '#BSUB -R "span[hosts=1] rusage[mem=4096]"',  # MB, LSF_UNIT_FOR_LIMITS by default
        "#BSUB -W 90",
        '#BSUB -gpu "num=1"',
        f"#BSUB -oo {request.stdout}",
        f"#BSUB -eo {request.stderr}",
        "#BSUB -q gpu",
        "#BSUB -P icecube",
        '#BSUB -R "select[type==X86_64]"',  # the site's extra lines, then the request's
        "#BSUB -app pilot",
        "#BSUB -sp 10",
    ]
    assert text.splitlines()[: len(header(text)) + 1] == ["#!/bin/sh", *header(text)]


@pytest.mark.parametrize(("unit", "memory", "expected"), [("KB", 4.0, 4194304), ("GB", 0.5, 1)])
def test_memory_is_written_in_the_sites_unit(
    tmp_path: Path, unit: str, memory: float, expected: int
) -> None:
    plugin = LsfPlugin(memory_unit=unit, runner=FakeRunner())
    lines = header(plugin.render_script(realistic(tmp_path, memory=memory, gpu=0)))
    assert f"#BSUB -M {expected}" in lines
    assert f'#BSUB -R "span[hosts=1] rusage[mem={expected}]"' in lines
    assert not any("-gpu" in line for line in lines)


def test_one_output_file_for_both_streams(tmp_path: Path) -> None:
    request = realistic(tmp_path, stderr=tmp_path / "pilot-7" / "out.txt")
    lines = header(LsfPlugin(runner=FakeRunner()).render_script(request))
    assert f"#BSUB -oo {request.stdout}" in lines
    assert not any(line.startswith("#BSUB -eo") for line in lines)


def test_the_script_body_runs_the_argv_in_the_workdir_with_the_env(tmp_path: Path) -> None:
    # #BSUB lines are comments to the shell, so the script runs as-is outside LSF.
    request = realistic(tmp_path)
    path = LsfPlugin(runner=FakeRunner()).write_script(request)
    done = subprocess.run(["/bin/sh", str(path)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [str(request.workdir), TRICKY, request.env["GREETING"]]


def test_submit_hands_the_script_to_bsub_on_stdin(tmp_path: Path) -> None:
    runner = FakeRunner([(DATA / "bsub.txt").read_text(), "Job <5151> is submitted to queue."])
    first, second = realistic(tmp_path / "1"), realistic(tmp_path / "2", name="pilot-8")
    plugin = LsfPlugin(bsub="/opt/lsf/bin/bsub", runner=runner)
    assert plugin.submit([first, second]) == ["5150", "5151"]
    assert runner.argvs == [["/opt/lsf/bin/bsub"], ["/opt/lsf/bin/bsub"]]
    _, kwargs = runner.calls[0]
    assert kwargs["input"] == (first.workdir / "pilot-7.lsf").read_text()
    assert "#BSUB -J frazil-pilot-7" in kwargs["input"]
    assert kwargs["cwd"] == first.workdir
    assert kwargs["timeout"] == plugin.timeout


def test_a_failed_bsub_raises_with_its_command_and_kills_the_ones_before(
    tmp_path: Path,
) -> None:
    refusal = (255, "", "Bad resource requirement syntax. Job not submitted.\n")
    runner = FakeRunner(["Job <5150> is submitted to queue <normal>.\n", refusal, ""])
    with pytest.raises(BatchCommandError) as caught:
        LsfPlugin(runner=runner).submit([realistic(tmp_path / "1"), realistic(tmp_path / "2")])
    assert caught.value.argv == ["bsub"]
    assert caught.value.returncode == 255
    assert "Job not submitted" in caught.value.stderr
    assert "exit code 255" in str(caught.value)
    assert runner.argvs[-1] == ["bkill", "5150"]


@pytest.mark.parametrize("field_name", ["stdout", "stderr"])
def test_paths_bsub_would_split_are_refused_before_anything_runs(
    tmp_path: Path, field_name: str
) -> None:
    runner = FakeRunner()
    bad = realistic(tmp_path, **{field_name: tmp_path / "with space" / "out"})
    with pytest.raises(BatchError, match="#BSUB"):
        LsfPlugin(runner=runner).submit([realistic(tmp_path / "ok"), bad])
    assert runner.calls == []


def test_parse_submit_reads_the_id_or_refuses() -> None:
    assert parse_submit((DATA / "bsub.txt").read_text()) == "5150"
    assert parse_submit("Job <77> is submitted to default queue <normal>.\n") == "77"
    for bad in ["", "Request aborted by esub. Job not submitted.\n"]:
        with pytest.raises(BatchError):
            parse_submit(bad)


def test_bjobs_json_maps_every_stat_and_exit_reason() -> None:
    found = parse_status(BJOBS)
    assert {s.native for s in found.values()} >= set(NATIVE_STATES)
    seen = {i: (s.native, s.state, s.exit_code) for i, s in found.items()}
    assert seen == {
        "5150": ("PEND", BatchState.PENDING, None),
        "5151": ("RUN", BatchState.RUNNING, None),
        "5152": ("DONE", BatchState.COMPLETED, 0),
        "5153": ("EXIT", BatchState.FAILED, 3),
        "5154": ("EXIT", BatchState.TIMEOUT, 140),  # TERM_RUNLIMIT
        "5155": ("EXIT", BatchState.CANCELLED, 130),  # TERM_OWNER
        "5156": ("EXIT", BatchState.CANCELLED, 130),  # TERM_ADMIN
        "5157": ("EXIT", BatchState.PREEMPTED, 130),  # TERM_PREEMPT
        "5158": ("PSUSP", BatchState.HELD, None),
        "5159": ("USUSP", BatchState.HELD, None),
        "5160": ("SSUSP", BatchState.HELD, None),
        "5161": ("UNKWN", BatchState.UNKNOWN, None),
        "5162": ("ZOMBI", BatchState.UNKNOWN, None),
        "5163": ("EXIT", BatchState.FAILED, 137),  # TERM_MEMLIMIT is a plain failure
        "5164": ("EXIT", BatchState.TIMEOUT, 140),  # the run limit, worded without keyword
        "5165": ("WAIT", BatchState.PENDING, None),
        "5166": ("PROV", BatchState.PENDING, None),
    }
    assert found["5154"].reason.startswith("TERM_RUNLIMIT")


def test_an_unknown_stat_is_unknown_with_one_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "_warned_codes", set())  # earlier tests may have warned
    text = (DATA / "bjobs_unknown_stat.json").read_text()
    with caplog.at_level(logging.WARNING, logger="frazil.batch.base"):
        first, again = parse_status(text), parse_status(text)
    assert first["5199"].state is again["5199"].state is BatchState.UNKNOWN
    assert [r.getMessage() for r in caplog.records] == [
        "lsf: unknown native job state 'FROB', reported as UNKNOWN"
    ]


def test_empty_and_unreadable_bjobs_output() -> None:
    assert parse_status((DATA / "bjobs_empty.json").read_text()) == {}
    assert parse_status("") == {}
    # A record about an id bjobs does not know has no STAT: it is skipped, so VANISHED later.
    assert parse_status('{"RECORDS": [{"JOBID": "1", "ERROR": "Job <1> is not found"}]}') == {}
    for bad in ["No unfinished job found", '{"COMMAND": "bjobs"}', "[]"]:
        with pytest.raises(BatchError):
            parse_status(bad)


def test_status_is_one_bjobs_for_all_ids() -> None:
    runner = FakeRunner([(255, BJOBS, "Job <9999> is not found\n")])
    ids = ["5154", "5152", "9999", "", "5152[1]", "-1"]
    found = LsfPlugin(runner=runner).status(ids)
    assert list(found) == ids
    assert found["5154"].state is BatchState.TIMEOUT
    assert found["5152"].state is BatchState.COMPLETED
    assert {found[i].state for i in ids[2:]} == {BatchState.VANISHED}
    assert runner.argvs == [["bjobs", "-o", FIELDS, "-json", "-a", "5152", "5154", "9999"]]
    assert FIELDS == "jobid stat exit_code exit_reason"


def test_a_status_failure_other_than_unknown_ids_raises() -> None:
    runner = FakeRunner([(255, "", "LSF is down. Please wait ...\n")])
    with pytest.raises(BatchCommandError, match="LSF is down"):
        LsfPlugin(runner=runner).status(["5150"])
    assert LsfPlugin(runner=FakeRunner()).status(["x"])["x"].state is BatchState.VANISHED


def test_cancel_is_bkill_and_ignores_jobs_that_are_gone_or_finished() -> None:
    gone = (255, "", "Job <5152>: Job has already finished\nJob <9999>: No matching job found\n")
    runner = FakeRunner([gone, (255, "", "Job <5151>: User permission denied\n")])
    plugin = LsfPlugin(runner=runner)
    plugin.cancel(["5152", "9999", "nope"])
    with pytest.raises(BatchCommandError, match="permission denied"):
        plugin.cancel(["5151"])
    assert runner.argvs == [["bkill", "5152", "9999"], ["bkill", "5151"]]


def test_clean_queue_kills_only_unfinished_frazil_jobs_nobody_knows() -> None:
    runner = FakeRunner([BJOBS, ""])
    orphans = LsfPlugin(runner=runner).clean_queue(["5150", "5158"])
    assert orphans == ["5151", "5159", "5160", "5161", "5162", "5165", "5166"]
    assert runner.argvs == [
        ["bjobs", "-o", FIELDS, "-json", "-J", "frazil-*"],
        ["bkill", *orphans],
    ]
    nothing = FakeRunner([(255, "", "No unfinished job found\n")])
    assert LsfPlugin(runner=nothing).clean_queue([]) == []


def test_the_constructor_only_stores_settings() -> None:
    def no_commands(argv: Sequence[str], **kwargs: Any) -> CommandResult:
        raise AssertionError(f"the constructor ran {argv}")

    plugin = load_plugin("lsf", runner=no_commands, queue="long", memory_unit="KB")
    assert isinstance(plugin, LsfPlugin)
    assert (plugin.queue, plugin.memory_unit) == ("long", "KB")
    for bad in [{"memory_unit": "MiB"}, {"account": "a b"}, {"timeout": 0}]:
        with pytest.raises(BatchError):
            LsfPlugin(**bad)
