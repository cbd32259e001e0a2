"""The htcondor plugin, checked without a pool (none can run here; see docs/batch-plugins.md).

Its submit descriptions are parsed by the real HTCondor bindings (``htcondor2.Submit``) and
its ClassAd expressions evaluated by the real ``classad2``; its commands go through a fake
runner at the ``run_command`` boundary; its parsers read recorded output from
``tests/data/batch/htcondor`` (see the README there for where each sample comes from).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import classad2
import htcondor2
import pytest

from frazil.batch import base, load_plugin
from frazil.batch.base import BatchState, JobRequest
from frazil.batch.htcondor import (
    ATTRIBUTES,
    NATIVE_STATES,
    ORPHAN_CONSTRAINT,
    HTCondorPlugin,
    ids_constraint,
    parse_status,
    parse_submit,
)
from frazil.batch.run import CommandResult
from frazil.errors import BatchCommandError, BatchError
from frazil.testing import FakeRunner
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "batch" / "htcondor"
TRICKY = ["a b", "it's", 'say "hi"', "$HOME", "$(Cluster)", "''", "", "tab\there", "#x", "\\"]


def realistic(tmp_path: Path, **fields: Any) -> JobRequest:
    workdir = tmp_path / "pilot-7"
    values: dict[str, Any] = {
        "name": "pilot-7",
        "argv": ["/usr/bin/python3", "-m", "frazil.pilot", "--url", "https://frazil.example"],
        "workdir": workdir,
        "stdout": workdir / "out.txt",
        "stderr": workdir / "err.txt",
        "cpu": 2,
        "gpu": 1,
        "memory": 4.0,
        "disk": 10.0,
        "walltime": 1.5,
        "env": {"FRAZIL_SITE": "wisc", "GREETING": "hello 'world' \"q\" $HOME"},
    }
    return JobRequest(**{**values, **fields})


def split_new_syntax(value: str) -> list[str]:
    """HTCondor's "new" arguments/environment syntax, read by the condor_submit manual's rules.

    Independent of the plugin's writer; checked against the manual's own examples below.
    """
    assert value.startswith('"') and value.endswith('"'), value
    raw, items, current, in_item, i = value[1:-1].replace('""', '"'), [], "", False, 0
    while i < len(raw):
        if raw[i] == "'":
            in_item, i = True, i + 1
            while raw[i] != "'" or raw[i + 1 : i + 2] == "'":
                current, i = current + raw[i], i + (2 if raw[i] == "'" else 1)
            i += 1
        elif raw[i] in " \t":
            if in_item:
                items.append(current)
            current, in_item, i = "", False, i + 1
        else:
            current, in_item, i = current + raw[i], True, i + 1
    return [*items, current] if in_item else items


def test_the_reference_reader_agrees_with_the_manuals_examples() -> None:
    assert split_new_syntax('"3 simple arguments"') == ["3", "simple", "arguments"]
    assert split_new_syntax("\"one 'two with spaces' 3\"") == ["one", "two with spaces", "3"]
    assert split_new_syntax("\"one \"\"two\"\" 'spacey ''quoted'' argument'\"") == [
        "one",
        '"two"',
        "spacey 'quoted' argument",
    ]
    assert split_new_syntax("\"one=1 two=\"\"2\"\" three='spacey ''quoted'' value'\"") == [
        "one=1",
        'two="2"',
        "three=spacey 'quoted' value",
    ]


def test_the_submit_description_is_what_htcondor_reads(tmp_path: Path) -> None:
    plugin = HTCondorPlugin(
        account="group_icecube.prod",
        extra=['+ProjectName = "IceCube"', "requirements = (OpSysMajorVer == 9)"],
        skip=["transfer_executable"],
        runner=FakeRunner(),
    )
    request = realistic(tmp_path, extra=("priority = 5",))
    path = plugin.write_script(request)
    assert path == request.workdir / "pilot-7.sub"
    submit = htcondor2.Submit(path.read_text())

    assert submit["universe"] == "vanilla"
    assert submit["batch_name"] == "frazil-pilot-7"
    assert submit["executable"] == "/usr/bin/python3"
    assert submit["request_cpus"] == "2"
    assert submit["request_gpus"] == "1"
    assert submit["request_memory"] == "4096"  # MB
    assert submit["request_disk"] == str(10 * 1024 * 1024)  # KB
    assert submit["MY.MaxWallTimeMins"] == "90"
    assert submit["initialdir"] == str(request.workdir)
    assert submit["output"] == str(request.stdout)
    assert submit["error"] == str(request.stderr)
    assert submit["log"] == str(request.workdir / "pilot-7.log")
    assert submit["accounting_group"] == "group_icecube.prod"
    assert submit["MY.ProjectName"] == '"IceCube"'  # the site's extra lines
    assert submit["requirements"] == "(OpSysMajorVer == 9)"
    assert submit["priority"] == "5"  # the request's extra line
    assert "transfer_executable" not in submit  # skipped by the site
    assert submit.getQArgs() == "1"
    assert split_new_syntax(submit.expand("arguments")) == list(request.argv[1:])
    assert split_new_syntax(submit.expand("environment")) == [
        f"{k}={v}" for k, v in request.env.items()
    ]


def test_the_walltime_remove_expression_fires_after_the_walltime_of_a_running_job(
    tmp_path: Path,
) -> None:
    text = HTCondorPlugin(runner=FakeRunner()).submit_description(realistic(tmp_path))
    expression = classad2.ExprTree(htcondor2.Submit(text)["periodic_remove"])

    def removed(status: int, running_for: int) -> bool:
        ad = classad2.ClassAd({"JobStatus": status, "MaxWallTimeMins": 90})
        ad["JobCurrentStartDate"] = classad2.ExprTree(f"time() - {running_for}")
        return bool(expression.eval(ad))

    assert removed(2, 90 * 60 + 30)
    assert not removed(2, 90 * 60 - 30)
    assert not removed(1, 10 * 3600)  # an idle job waits as long as it must


def test_arguments_survive_blanks_quotes_and_macros(tmp_path: Path) -> None:
    request = realistic(tmp_path, argv=["/bin/echo", *TRICKY])
    submit = htcondor2.Submit(HTCondorPlugin(runner=FakeRunner()).submit_description(request))
    assert split_new_syntax(submit.expand("arguments")) == TRICKY


def test_a_command_without_a_path_runs_through_env(tmp_path: Path) -> None:
    request = realistic(tmp_path, argv=["python3", "-c", "pass"])
    submit = htcondor2.Submit(HTCondorPlugin(runner=FakeRunner()).submit_description(request))
    assert submit["executable"] == "/usr/bin/env"
    assert split_new_syntax(submit.expand("arguments")) == ["python3", "-c", "pass"]


@pytest.mark.parametrize("bad", ["two\nlines", "$$(Name)", "cr\r"])
def test_values_a_submit_line_cannot_hold_are_refused(tmp_path: Path, bad: str) -> None:
    runner = FakeRunner()
    plugin = HTCondorPlugin(runner=runner)
    request = realistic(tmp_path, argv=["/bin/echo", bad])
    with pytest.raises(BatchError, match="htcondor"):
        plugin.submit([realistic(tmp_path / "ok"), request])
    assert runner.calls == []  # nothing was submitted


def test_a_path_ending_in_a_backslash_is_refused(tmp_path: Path) -> None:
    # A trailing backslash would continue the submit line onto the next one.
    request = realistic(tmp_path, stdout=tmp_path / "out\\")
    with pytest.raises(BatchError, match="backslash"):
        HTCondorPlugin(runner=FakeRunner()).write_script(request)


def test_submit_runs_condor_submit_terse_and_returns_cluster_ids(tmp_path: Path) -> None:
    runner = FakeRunner([(DATA / "condor_submit_terse.txt").read_text(), "4243.0 - 4243.0\n"])
    plugin = HTCondorPlugin(schedd="schedd.example", pool="cm.example", runner=runner)
    first, second = realistic(tmp_path / "1"), realistic(tmp_path / "2", name="pilot-8")
    assert plugin.submit([first, second]) == ["4242", "4243"]
    assert runner.argvs == [
        ["condor_submit", "-name", "schedd.example", "-pool", "cm.example", "-terse", str(path)]
        for path in (first.workdir / "pilot-7.sub", second.workdir / "pilot-8.sub")
    ]
    assert runner.calls[0][1]["cwd"] == first.workdir
    assert runner.calls[0][1]["timeout"] == plugin.timeout


def test_a_failed_submit_raises_with_its_command_and_removes_the_ones_before(
    tmp_path: Path,
) -> None:
    refusal = (1, "", "ERROR: Can't find address of local schedd\n")
    runner = FakeRunner(["4242.0 - 4242.0\n", refusal, ""])
    plugin = HTCondorPlugin(condor_submit="/opt/condor/bin/condor_submit", runner=runner)
    with pytest.raises(BatchCommandError) as caught:
        plugin.submit([realistic(tmp_path / "1"), realistic(tmp_path / "2")])
    assert caught.value.argv[0] == "/opt/condor/bin/condor_submit"
    assert caught.value.returncode == 1
    assert "Can't find address of local schedd" in caught.value.stderr
    assert "exit code 1" in str(caught.value)
    assert runner.argvs[-1] == ["condor_rm", "4242"]


def test_the_default_runner_reports_a_missing_or_failing_condor_submit(tmp_path: Path) -> None:
    with pytest.raises(BatchCommandError) as missing:
        HTCondorPlugin(condor_submit=str(tmp_path / "no-such-condor_submit")).submit(
            [realistic(tmp_path)]
        )
    assert missing.value.returncode is None
    assert "cannot run" in str(missing.value)
    with pytest.raises(BatchCommandError) as failing:
        HTCondorPlugin(condor_submit="false").submit([realistic(tmp_path)])
    assert failing.value.argv[:2] == ["false", "-terse"]
    assert failing.value.returncode == 1


def test_parse_submit_reads_one_cluster_or_refuses() -> None:
    assert parse_submit((DATA / "condor_submit_terse.txt").read_text()) == "4242"
    for bad in ["", "Submitting job(s).\n", "12.0 - 13.0\n"]:
        with pytest.raises(BatchError):
            parse_submit(bad)


def test_parse_status_maps_every_job_status_of_the_recorded_output() -> None:
    found = {
        **parse_status((DATA / "condor_history.json").read_text()),
        **parse_status((DATA / "condor_q.json").read_text()),
    }
    assert {s.native for s in found.values()} >= set(NATIVE_STATES)
    seen = {i: (s.state, s.exit_code) for i, s in found.items()}
    assert seen == {
        "4242": (BatchState.PENDING, None),
        "4243": (BatchState.RUNNING, None),
        "4244": (BatchState.HELD, None),
        "4245": (BatchState.RUNNING, None),  # transferring output
        "4246": (BatchState.HELD, None),  # suspended
        "4247": (BatchState.CANCELLED, None),  # condor_rm, still leaving the queue
        "4250": (BatchState.COMPLETED, 0),
        "4251": (BatchState.FAILED, 3),
        "4252": (BatchState.FAILED, 128 + 9),
        "4253": (BatchState.CANCELLED, None),
        "4254": (BatchState.TIMEOUT, None),  # our walltime periodic_remove
        "4255": (BatchState.CANCELLED, None),  # some other periodic_remove
    }
    assert found["4244"].reason == "via condor_hold (by user frazil)"
    assert "PeriodicRemove" in found["4254"].reason


def test_an_unknown_job_status_is_unknown_with_one_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "_warned_codes", set())  # earlier tests may have warned
    text = (DATA / "condor_q_unknown_status.json").read_text()
    with caplog.at_level(logging.WARNING, logger="frazil.batch.base"):
        first, again = parse_status(text), parse_status(text)
    assert first["4260"].state is again["4260"].state is BatchState.UNKNOWN
    assert [r.getMessage() for r in caplog.records] == [
        "htcondor: unknown native job state 'JobStatus 9', reported as UNKNOWN"
    ]


def test_parse_status_of_empty_and_unreadable_output() -> None:
    assert parse_status("") == {}
    assert parse_status("\n") == {}
    for bad in ["-- Failed to fetch ads", '{"ClusterId": 1}']:
        with pytest.raises(BatchError):
            parse_status(bad)


def test_status_asks_the_queue_then_the_history_once_each() -> None:
    runner = FakeRunner(
        [(DATA / "condor_q.json").read_text(), (DATA / "condor_history.json").read_text()]
    )
    plugin = HTCondorPlugin(runner=runner)
    ids = ["4243", "4250", "4254", "4242", "9999", "", "4243.0", "../etc"]
    found = plugin.status(ids)

    assert list(found) == ids
    assert found["4243"].state is BatchState.RUNNING
    assert found["4250"].state is BatchState.COMPLETED
    assert found["4254"].state is BatchState.TIMEOUT
    assert {found[i].state for i in ("9999", "", "4243.0", "../etc")} == {BatchState.VANISHED}
    attributes = ",".join(ATTRIBUTES)
    q_constraint = "member(ClusterId, {4242, 4243, 4250, 4254, 9999})"
    history_constraint = "member(ClusterId, {4250, 4254, 9999})"  # what the queue lacked
    query = ["-json", "-attributes", attributes, "-constraint"]
    assert runner.argvs == [
        ["condor_q", *query, q_constraint],
        ["condor_history", *query, history_constraint, "-match", "3"],
    ]


def test_status_skips_the_history_when_the_queue_knows_every_id() -> None:
    runner = FakeRunner([(DATA / "condor_q.json").read_text()])
    assert HTCondorPlugin(runner=runner).status(["4242"])["4242"].state is BatchState.PENDING
    assert len(runner.calls) == 1
    assert HTCondorPlugin(runner=runner).status(["", "x"])["x"].state is BatchState.VANISHED
    assert len(runner.calls) == 1  # no valid id: no command at all


def test_the_query_constraints_select_what_they_should() -> None:
    def matches(expression: str, **ad: Any) -> bool:
        return bool(classad2.ExprTree(expression).eval(classad2.ClassAd(ad)))

    by_id = ids_constraint(["4242", "4250"])
    assert matches(by_id, ClusterId=4250)
    assert not matches(by_id, ClusterId=4251)
    assert matches(ORPHAN_CONSTRAINT, JobBatchName="frazil-pilot-1")
    assert not matches(ORPHAN_CONSTRAINT, JobBatchName="analysis-frazil-1")
    assert not matches(ORPHAN_CONSTRAINT, ClusterId=1)  # no batch name at all


def test_cancel_removes_clusters_and_ignores_those_that_left() -> None:
    left = (1, "", "Couldn't find/remove all jobs in cluster 4250.\n")
    runner = FakeRunner([left, (1, "", "ERROR: Failed to connect to local schedd\n")])
    plugin = HTCondorPlugin(runner=runner)
    plugin.cancel(["4250", "bogus", ""])
    assert runner.argvs == [["condor_rm", "4250"]]
    with pytest.raises(BatchCommandError, match="Failed to connect"):
        plugin.cancel(["4251"])
    plugin.cancel(["not-an-id"])
    assert len(runner.calls) == 2


def test_clean_queue_removes_only_unfinished_frazil_jobs_nobody_knows() -> None:
    runner = FakeRunner([(DATA / "condor_q.json").read_text(), ""])
    plugin = HTCondorPlugin(runner=runner)
    assert plugin.clean_queue(["4242", "4246"]) == ["4243", "4244", "4245"]
    assert runner.argvs == [
        [
            "condor_q",
            "-json",
            "-attributes",
            ",".join(ATTRIBUTES),
            "-constraint",
            ORPHAN_CONSTRAINT,
        ],
        ["condor_rm", "4243", "4244", "4245"],
    ]
    assert HTCondorPlugin(runner=FakeRunner([""])).clean_queue([]) == []


def test_the_constructor_only_stores_settings() -> None:
    def no_commands(argv: Sequence[str], **kwargs: Any) -> CommandResult:
        raise AssertionError(f"the constructor ran {argv}")

    plugin = load_plugin("htcondor", runner=no_commands, extra=["priority = 1"])
    assert isinstance(plugin, HTCondorPlugin)
    with pytest.raises(BatchError):
        HTCondorPlugin(extra=["a\nqueue 100"])
    with pytest.raises(BatchError):
        HTCondorPlugin(skip=[""])
    with pytest.raises(BatchError):
        load_plugin("htcondor", queue="long")  # HTCondor has no queues


def _diamond(tmp_path: Path) -> list[JobRequest]:
    return [
        realistic(tmp_path / "dag", name=f"frazil-{n}-1", workdir=tmp_path / "dag" / n)
        for n in ("a", "b", "c", "d")
    ]


def test_a_dag_file_names_every_node_and_edge(tmp_path: Path) -> None:
    plugin = HTCondorPlugin(runner=FakeRunner())
    requests = _diamond(tmp_path)
    text = plugin.dag_file(requests, [[], [0], [0], [1, 2]])
    lines = text.splitlines()
    assert lines[:4] == [
        f"JOB frazil-{n}-1 {tmp_path}/dag/{n}/frazil-{n}-1.sub DIR {tmp_path}/dag/{n}"
        for n in ("a", "b", "c", "d")
    ]
    assert lines[4:] == [
        "PARENT frazil-a-1 CHILD frazil-b-1",
        "PARENT frazil-a-1 CHILD frazil-c-1",
        "PARENT frazil-b-1 frazil-c-1 CHILD frazil-d-1",
    ]
    for request in requests:  # each node's submit file is one HTCondor reads
        sub = htcondor2.Submit((request.workdir / f"{request.name}.sub").read_text())
        assert sub["request_cpus"] == "2"


def test_submit_dag_runs_condor_submit_dag_and_names_the_nodes(tmp_path: Path) -> None:
    runner = FakeRunner(replies=["1 job(s) submitted to cluster 812.\n"])
    plugin = HTCondorPlugin(runner=runner, variant="dag")
    ids = plugin.submit_dag(_diamond(tmp_path), [[], [0], [0], [1, 2]])
    assert ids == ["812:frazil-a-1", "812:frazil-b-1", "812:frazil-c-1", "812:frazil-d-1"]
    (argv,) = runner.argvs
    assert argv[:4] == ["condor_submit_dag", "-force", "-batch-name", "frazil-a-1"]
    assert argv[4].endswith("frazil-a-1.dag")
    with pytest.raises(BatchError, match="no variant"):
        HTCondorPlugin(variant="mesh")


def test_dag_node_statuses(tmp_path: Path) -> None:
    import json

    ads = [
        {"ClusterId": 813, "ProcId": 0, "JobStatus": 4, "ExitCode": 0, "DAGManJobId": 812,
         "DAGNodeName": "frazil-a-1"},
        {"ClusterId": 814, "ProcId": 0, "JobStatus": 2, "DAGManJobId": 812,
         "DAGNodeName": "frazil-b-1"},
    ]  # fmt: skip
    dagman = [{"ClusterId": 812, "ProcId": 0, "JobStatus": 2}]
    runner = FakeRunner(replies=[json.dumps(ads), "", json.dumps(dagman)])
    plugin = HTCondorPlugin(runner=runner)
    ids = ["812:frazil-a-1", "812:frazil-b-1", "812:frazil-d-1"]
    found = plugin.status(ids)
    assert [found[i].state for i in ids] == [
        BatchState.COMPLETED, BatchState.RUNNING, BatchState.PENDING,  # d: not yet submitted
    ]  # fmt: skip
    assert "DAGManJobId == 812" in runner.argvs[0][-1]
    ended = FakeRunner(
        replies=[
            json.dumps(ads[:1]),
            "",
            "",
            json.dumps([{**dagman[0], "JobStatus": 4, "ExitCode": 1}]),
        ]
    )
    found = HTCondorPlugin(runner=ended).status(["812:frazil-d-1"])
    assert found["812:frazil-d-1"].state is BatchState.CANCELLED  # the DAG ended without it
