"""A batch-side DAG site (``plugin::dag``): whole jobs submitted at once, the rest reserved."""

from __future__ import annotations

from pathlib import Path

import pytest

from frazil.batch.base import BatchState
from frazil.errors import BatchError
from frazil.model.states import AttemptOutcome
from frazil.site.records import ReservedJob, TaskJob
from frazil.testing import FakeBatch, FakeClient
from tests.site.conftest import MakeSite, claim, dag_task, job_claim

# a diamond: 1 → (2, 3) → 4; only the root is claimed now
DIAMOND = (dag_task(1, attempt=1), dag_task(2, 1), dag_task(3, 1), dag_task(4, 2, 3))


def test_a_whole_job_is_submitted_as_a_dag_with_its_tasks_reserved(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site(plugin="fake::dag", max_queued=8, claim_batch=6)
    client.job_claims = [job_claim(*DIAMOND)]
    client.claims = [claim(9)]
    done = site.step(0.0)
    assert client.calls_to("claim_jobs")[0].args[2] == 3  # half the room: 6 // 2
    ((requests, parents, ids),) = batch.dags
    assert parents == [[], [0], [0], [1, 2]]
    assert [type(site.running[b]) for b in ids] == [TaskJob, ReservedJob, ReservedJob, ReservedJob]
    assert site.running[ids[0]] == TaskJob(ids[0], str(requests[0].workdir), 0.0, 1, 1)
    # a reserved task's pilot gets its reservation in a file, and no attempt
    reserved = requests[3]
    assert reserved.workdir.name == "t4-4-r"
    assert (reserved.workdir / "reservation").read_text() == "rv-4"
    argv = list(reserved.argv)
    assert argv[argv.index("--reservation-file") + 1] == str(reserved.workdir / "reservation")
    assert "--attempt" not in argv and "--passkey-file" in list(requests[0].argv)
    # only the claimed root (and the single task after the DAG) has an attempt to record
    recorded = [c.args[1:] for c in client.calls_to("record_batch_id")]
    assert recorded == [(1, 1, ids[0]), (9, 1, "fake.5")]
    # the room left (6 - 4) goes to single tasks
    assert client.calls_to("claim")[0].args[2] == 2
    assert (done.claimed, done.submitted) == (5, 5)
    # the reserved tasks count as known when the server is asked what was never submitted
    assert client.calls_to("unsubmitted")[0].args[1] == [1, 2, 3, 4, 9]


def test_a_reserved_task_s_job_ending_is_not_reported_but_a_root_s_is(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site(plugin="fake::dag")
    client.job_claims = [job_claim(*DIAMOND)]
    site.step(0.0)
    root, second = "fake.1", "fake.2"
    second_dir = Path(site.running[second].workdir)
    batch.set_state(second, BatchState.COMPLETED, exit_code=0)
    batch.set_state(root, BatchState.FAILED, exit_code=3)
    done = site.step(1.0)
    assert done.ended == 2 and not second_dir.exists()
    (lost,) = client.calls_to("lost")  # the reserved one's pilot reported, or found it not ready
    assert lost.args[1:3] == (1, 1) and lost.args[4] == AttemptOutcome.FAILED
    assert set(site.running) == {"fake.3", "fake.4"}


def test_stale_attempts_of_a_dag_cancel_only_claimed_tasks(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site(plugin="fake::dag")
    client.job_claims = [job_claim(*DIAMOND)]
    site.step(0.0)
    client.stale = {(1, 1)}
    done = site.step(1.0)
    assert client.calls_to("stale_attempts")[-1].args[1] == [(1, 1)]
    assert done.cancelled == 1 and batch.cancelled == ["fake.1"]


def test_a_dag_that_cannot_be_submitted_hands_back_its_claimed_tasks(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site(plugin="fake::dag")
    client.job_claims = [job_claim(*DIAMOND)]
    batch.fail(BatchError("condor_submit_dag: schedd down"))
    with pytest.raises(BatchError):
        site.step(0.0)
    (back,) = client.calls_to("lost")  # the root; the reserved ones have no attempt yet
    assert back.args[1:3] == (1, 1) and back.args[4] == AttemptOutcome.UNSUBMITTED
    assert back.args[3] == "not submitted: condor_submit_dag: schedd down"
    assert back.kwargs == {"counts": False}
    assert site.running == {} and client.calls_to("claim") == []
