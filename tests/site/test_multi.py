"""A site of multi-task pilots: as many pilots as waiting tasks need, minus those not started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from frazil.batch.base import BatchState
from frazil.errors import BatchError, Unreachable
from frazil.model.states import AttemptOutcome
from frazil.site.records import PilotJob, TaskJob
from frazil.testing import FakeBatch, FakeClient
from tests.site.conftest import MakeSite


def test_pilots_are_started_for_the_waiting_tasks_minus_the_pending_pilots(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site(pilot="multi", cpu=4, max_queued=8)
    client.waiting = 10
    done = site.step(0.0)
    assert done.submitted == 3  # ceil(10 waiting / 4 cpu per pilot)
    assert client.calls_to("claim") == []
    # all three are pending: they will take the 10 tasks, so none more
    assert site.step(1.0).submitted == 0
    # two started; 10 still wait, the one pending pilot takes 4: two more
    batch.set_state("fake.1", BatchState.RUNNING)
    batch.set_state("fake.2", BatchState.RUNNING)
    assert site.step(2.0).submitted == 2
    # a held pilot is not running either
    for batch_id in ("fake.3", "fake.4", "fake.5"):
        batch.set_state(batch_id, BatchState.RUNNING)
    batch.set_state("fake.4", BatchState.HELD)
    client.waiting = 9
    assert site.step(3.0).submitted == 2  # ceil(9 / 4) - 1 held
    assert len(site.running) == 7


def test_the_queue_room_caps_the_pilots(make_site: MakeSite, client: FakeClient) -> None:
    site = make_site(pilot="multi", max_queued=2)
    client.waiting = 100
    assert site.step(0.0).submitted == 2
    assert site.step(1.0).submitted == 0
    assert len(client.calls_to("demand")) == 1  # a full queue does not ask


def test_a_pilot_gets_its_key_in_a_file_and_its_slot_on_the_command_line(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site(pilot="multi", cpu=2, pilot_idle=30.0)
    client.waiting = 1
    site.step(5.0)
    (request,) = batch.submitted
    workdir = site.scratch / "pilots" / "1"
    assert request.workdir == workdir and request.cpu == 2
    assert (workdir / "key").read_text() == "pilot-key-1"
    assert os.stat(workdir / "key").st_mode & 0o777 == 0o600
    assert list(request.argv) == [
        "pilot", "--server", "http://frazil.test", "--pilot", "1",
        "--key-file", str(workdir / "key"), "--workdir", str(workdir / "tasks"),
        "--cpu", "2", "--gpu", "0", "--memory", "2.0", "--disk", "5.0", "--walltime", "1.0",
        "--idle", "30.0", "--heartbeat", "60.0",
    ]  # fmt: skip
    assert site.running == {"fake.1": PilotJob("fake.1", str(workdir), 5.0, pilot_id=1)}
    (recorded,) = client.calls_to("record_pilot_batch_id")
    assert recorded.args == ("s", 1, "fake.1")


@pytest.mark.parametrize(
    ("state", "outcome", "counts"),
    [
        (BatchState.TIMEOUT, AttemptOutcome.TIMEOUT, True),
        (BatchState.FAILED, AttemptOutcome.FAILED, True),
        (BatchState.CANCELLED, AttemptOutcome.CANCELLED, False),
        (BatchState.VANISHED, AttemptOutcome.VANISHED, True),
    ],
)
def test_a_pilot_s_end_resets_what_it_held(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch, state: BatchState,
    outcome: AttemptOutcome, counts: bool,
) -> None:  # fmt: skip
    site = make_site(pilot="multi")
    client.waiting = 1
    site.step(0.0)
    workdir = Path(site.running["fake.1"].workdir)
    (workdir / "pilot.err").write_text("killed\n")
    if state is BatchState.VANISHED:
        del batch.jobs["fake.1"]
    else:
        batch.set_state("fake.1", state, native="N")
    client.pilot_held, client.waiting = 2, 0
    done = site.step(1.0)
    (ended,) = client.calls_to("pilot_ended")
    native = "" if state is BatchState.VANISHED else "N"
    assert ended.args == (
        "s", 1, f"batch job fake.1 ended {state.value} ({native}); pilot stderr: ...killed",
        outcome,
    )  # fmt: skip
    assert ended.kwargs == {"counts": counts}
    assert (done.ended, done.reset) == (1, 2)
    assert site.running == {} and not workdir.exists()


def test_a_pilot_s_end_is_told_again_while_the_server_is_away(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site(pilot="multi")
    client.waiting = 1
    site.step(0.0)
    batch.set_state("fake.1", BatchState.FAILED)
    client.waiting = 0
    client.fail("pilot_ended", Unreachable("away"))
    done = site.step(1.0)
    assert done.errors == ["pilot 1: away"] and "fake.1" in site.running
    site.step(2.0)
    assert len(client.calls_to("pilot_ended")) == 2 and site.running == {}


def test_a_pilot_that_cannot_be_submitted_is_ended_uncounted(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site(pilot="multi")
    client.waiting = 3
    batch.fail(BatchError("qsub: too many jobs"), after=1)
    with pytest.raises(BatchError):
        site.step(0.0)
    (ended,) = client.calls_to("pilot_ended")
    assert ended.args == ("s", 2, "not submitted: qsub: too many jobs", "unsubmitted")
    assert ended.kwargs == {"counts": False}
    assert list(site.running) == ["fake.1"]


def test_a_task_s_job_from_before_the_site_turned_multi_is_still_cancelled_when_stale(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    make_site().tracker.track(TaskJob("old.1", "/nowhere", 0.0, task_id=4, attempt=1))
    batch.set_state("old.1", BatchState.RUNNING)
    site = make_site(pilot="multi")
    client.stale = {(4, 1)}
    done = site.step(1.0)
    assert done.cancelled == 1 and batch.cancelled == ["old.1"] and site.running == {}
