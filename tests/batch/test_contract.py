"""The BatchPlugin contract, run unchanged against every plugin that can run here."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from frazil.batch.base import BatchPlugin, BatchState, JobRequest
from tests.batch.conftest import ENDED, gated, wait_for, wait_until

Request = Callable[..., JobRequest]


def test_a_job_runs_in_its_workdir_with_its_output_files(
    any_plugin: BatchPlugin, request_for: Request
) -> None:
    request = request_for("hello", "echo made > made.txt; echo to-out; echo to-err >&2")
    (job,) = any_plugin.submit([request])
    status = wait_for(any_plugin, [job], ENDED)[job]
    assert (status.state, status.exit_code) == (BatchState.COMPLETED, 0)
    assert status.id == job
    assert (request.workdir / "made.txt").read_text() == "made\n"
    assert request.stdout.read_text() == "to-out\n"
    assert request.stderr.read_text() == "to-err\n"


def test_ids_come_back_in_order_and_a_nonzero_exit_is_failed(
    any_plugin: BatchPlugin, request_for: Request
) -> None:
    ids = any_plugin.submit([request_for(f"exit-{n}", f"exit {n}") for n in (3, 0, 4)])
    assert len(set(ids)) == 3
    done = wait_for(any_plugin, ids, ENDED)
    assert [(done[i].state, done[i].exit_code) for i in ids] == [
        (BatchState.FAILED, 3),
        (BatchState.COMPLETED, 0),
        (BatchState.FAILED, 4),
    ]


def test_argv_reaches_the_command_without_shell_interpretation(
    any_plugin: BatchPlugin, tmp_path: Path
) -> None:
    args = ["a b", "$HOME", "it's", "`id`", ";rm -rf x", "*"]
    workdir = tmp_path / "quoted"
    request = JobRequest(
        name="quoted",
        argv=[sys.executable, "-c", "import sys; print(sys.argv[1:])", *args],
        workdir=workdir,
        stdout=workdir / "out",
        stderr=workdir / "out",
        memory=0.5,
    )
    script = any_plugin.write_script(request)
    assert script.parent == workdir
    assert script.is_file()
    (job,) = any_plugin.submit([request])
    wait_for(any_plugin, [job], {BatchState.COMPLETED})
    assert (workdir / "out").read_text() == f"{args}\n"


def test_cancel_ends_a_running_job(
    any_plugin: BatchPlugin, request_for: Request, tmp_path: Path
) -> None:
    request = request_for("victim", gated(tmp_path / "never", before="echo up > up"))
    (job,) = any_plugin.submit([request])
    wait_until((request.workdir / "up").exists)
    assert any_plugin.status([job])[job].state is BatchState.RUNNING
    any_plugin.cancel([job])
    assert wait_for(any_plugin, [job], ENDED)[job].state is BatchState.CANCELLED
    any_plugin.cancel([job])  # cancelling an ended job changes nothing
    assert any_plugin.status([job])[job].state is BatchState.CANCELLED


def test_unknown_ids_are_vanished_never_completed(any_plugin: BatchPlugin) -> None:
    name = any_plugin.name
    if hasattr(any_plugin, "vanish_after"):  # no grace: these ids never existed
        any_plugin.vanish_after = 0.0
    ids = [f"{name}-{'0' * 32}", f"{name}-../../etc/passwd", "12345", ""]
    found = any_plugin.status(ids)
    assert sorted(found) == sorted(ids)
    assert {s.state for s in found.values()} == {BatchState.VANISHED}
    any_plugin.cancel(ids)  # ignored, as scancel does


def test_clean_queue_cancels_only_jobs_nobody_knows(
    any_plugin: BatchPlugin, request_for: Request, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    # schedulers' plugins touch only jobs named like Frazil's, never other people's
    names = ("frazil-kept", "frazil-orphan")
    kept, orphan = any_plugin.submit([request_for(n, gated(gate)) for n in names])
    assert any_plugin.clean_queue([kept]) == [orphan]
    assert wait_for(any_plugin, [orphan], ENDED)[orphan].state is BatchState.CANCELLED
    assert any_plugin.status([kept])[kept].state in {BatchState.PENDING, BatchState.RUNNING}
    gate.touch()
    assert wait_for(any_plugin, [kept], ENDED)[kept].state is BatchState.COMPLETED
    assert any_plugin.clean_queue([]) == []  # ended jobs are nobody's orphans
