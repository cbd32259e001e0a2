"""A single-task site, one ``step(now)`` at a time, over a fake server and batch system."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from frazil.batch.base import BatchState
from frazil.errors import BatchError, NotFound, Unreachable
from frazil.model.states import AttemptOutcome
from frazil.site.daemon import CLEAN_EVERY, HEARTBEAT_EVERY
from frazil.site.records import TaskJob
from frazil.testing import FakeBatch, FakeClient
from tests.site.conftest import MakeSite, claim


def test_claimed_tasks_are_submitted_one_pilot_each(make_site: MakeSite, client: FakeClient,
                                                    batch: FakeBatch) -> None:  # fmt: skip
    site = make_site(max_queued=5, claim_batch=4)
    client.claims = [claim(1), claim(2)]
    done = site.step(0.0)
    assert (done.claimed, done.submitted) == (2, 2)
    (call,) = client.calls_to("claim")
    assert call.args[2] == 4  # min(max_queued 5 - 0 running, claim_batch 4, submit_rate 50)
    first = batch.requests["fake.1"]
    workdir = first.workdir
    assert workdir == site.scratch / "7" / "0" / "t1-1-1"  # name-task-attempt
    assert list(first.argv) == [
        "pilot", "--server", "http://frazil.test", "--task", "1", "--attempt", "1",
        "--passkey-file", str(workdir / "passkey"), "--workdir", str(workdir / "task"),
        "--heartbeat", "60.0",
    ]  # fmt: skip
    assert (workdir / "passkey").read_text() == "pk-1-1"
    assert os.stat(workdir / "passkey").st_mode & 0o777 == 0o600
    assert first.env["FRAZIL_SITE"] == "s"
    assert site.running == {
        "fake.1": TaskJob("fake.1", str(workdir), 0.0, 1, 1),
        "fake.2": TaskJob("fake.2", str(batch.requests["fake.2"].workdir), 0.0, 2, 1),
    }
    recorded = [c.args[1:] for c in client.calls_to("record_batch_id")]
    assert recorded == [(1, 1, "fake.1"), (2, 1, "fake.2")]
    assert site.claim_request is None
    # the next round asks for the free slots only: 5 - 2 running
    site.step(1.0)
    assert client.calls_to("claim")[-1].args[2] == 3


def test_a_full_queue_claims_nothing(make_site: MakeSite, client: FakeClient) -> None:
    site = make_site(max_queued=1)
    client.claims = [claim(1), claim(2)]
    site.step(0.0)
    site.step(1.0)
    assert len(client.calls_to("claim")) == 1
    assert len(site.running) == 1


def test_a_claim_is_named_before_it_is_sent_and_repeated_after_a_lost_answer(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site()
    client.claims = [claim(1), claim(2)]
    client.fail("claim", Unreachable("the answer was lost"), after=True)
    with pytest.raises(Unreachable):
        site.step(0.0)
    request = client.calls_to("claim")[0].kwargs["request"]
    saved = json.loads(site.state_path.read_text())
    assert saved["claim_request"] == request and len(request) >= 32
    # a restarted daemon sends the same claim again and submits what it got
    again = make_site()
    assert again.claim_request == request
    done = again.step(1.0)
    assert client.calls_to("claim")[1].kwargs["request"] == request
    assert done.submitted == 2 and {j.task_id for j in again.running.values()} == {1, 2}
    assert again.claim_request is None
    assert json.loads(again.state_path.read_text())["claim_request"] is None


def test_a_claim_cut_short_by_a_dying_daemon_is_finished_after_a_restart(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site()
    client.claims = [claim(1), claim(2)]
    client.fail("record_batch_id", SystemExit("killed"))  # dies after submitting task 1
    with pytest.raises(SystemExit):
        site.step(0.0)
    again = make_site()
    assert list(again.running) == ["fake.1"] and again.claim_request is not None
    done = again.step(1.0)
    assert done.claimed == 2 and done.submitted == 1  # task 1 is not submitted twice
    assert [r.name for r in batch.submitted] == ["frazil-1-1", "frazil-2-1"]
    assert len({c.kwargs["request"] for c in client.calls_to("claim")}) == 1
    assert again.claim_request is None


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        (BatchState.TIMEOUT, AttemptOutcome.TIMEOUT),
        (BatchState.FAILED, AttemptOutcome.FAILED),
        (BatchState.COMPLETED, AttemptOutcome.FAILED),
        (BatchState.CANCELLED, AttemptOutcome.CANCELLED),
        (BatchState.PREEMPTED, AttemptOutcome.CANCELLED),
        (BatchState.VANISHED, AttemptOutcome.VANISHED),
    ],
)
def test_an_ended_batch_job_is_reported_lost_with_its_outcome(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch, state: BatchState,
    outcome: AttemptOutcome,
) -> None:  # fmt: skip
    site = make_site()
    client.claims = [claim(3, 2)]
    site.step(0.0)
    workdir = Path(site.running["fake.1"].workdir)
    (workdir / "pilot.err").write_text("Traceback: boom\n")
    if state is BatchState.VANISHED:
        del batch.jobs["fake.1"]
    else:
        batch.set_state("fake.1", state, exit_code=1, reason="node died", native="X")
    done = site.step(1.0)
    (lost,) = client.calls_to("lost")
    assert lost.args[1:3] == (3, 2) and lost.args[4] == outcome
    assert lost.kwargs == {"counts": True}
    ended = (
        "batch job fake.1 ended vanished ()" if state is BatchState.VANISHED
        else f"batch job fake.1 ended {state.value} (X, exit code 1): node died"
    )  # fmt: skip
    assert lost.args[3] == (
        f"{ended} without a report from its pilot; pilot stderr: ...Traceback: boom"
    )
    assert (done.ended, done.reset) == (1, 1)
    assert site.running == {} and not workdir.exists()


def test_a_job_whose_pilot_reported_is_forgotten_without_a_reset(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site()
    client.claims = [claim(1)]
    site.step(0.0)
    batch.set_state("fake.1", BatchState.COMPLETED, exit_code=0)
    client.lost_status = None  # the pilot reported first
    done = site.step(1.0)
    assert (done.ended, done.reset) == (1, 0) and site.running == {}


def test_a_server_away_keeps_the_ended_job_for_the_next_round(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site()
    client.claims = [claim(1)]
    site.step(0.0)
    batch.set_state("fake.1", BatchState.FAILED, exit_code=2)
    client.fail("lost", Unreachable("cannot reach the Frazil server"))
    done = site.step(1.0)
    assert done.ended == 1 and done.errors == ["task 1: cannot reach the Frazil server"]
    assert "fake.1" in site.running
    assert "fake.1" in json.loads(site.state_path.read_text())["jobs"]
    done = site.step(2.0)
    assert done.reset == 1 and site.running == {}
    assert len(client.calls_to("lost")) == 2


def test_an_end_the_server_refuses_is_not_told_again(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site()
    client.claims = [claim(1)]
    site.step(0.0)
    batch.set_state("fake.1", BatchState.FAILED)
    client.fail("lost", NotFound("no attempt 1 of task 1"))
    done = site.step(1.0)
    assert done.errors == ["task 1: no attempt 1 of task 1"] and site.running == {}
    site.step(2.0)
    assert len(client.calls_to("lost")) == 1


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (BatchError("sbatch: the controller is down"), "not submitted: sbatch: the controller"),
        (OSError(28, "No space left on device"), "not submitted: [Errno 28] No space left"),
    ],
)
def test_a_failed_submission_hands_back_the_rest_of_the_claim_uncounted(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch, error: Exception, why: str
) -> None:
    site = make_site()
    client.claims = [claim(1), claim(2), claim(3)]
    batch.fail(error, after=1)
    with pytest.raises(type(error)):
        site.step(0.0)
    assert list(site.running) == ["fake.1"]
    handed = client.calls_to("lost")
    assert [c.args[1:3] for c in handed] == [(2, 1), (3, 1)]
    assert all(c.args[3].startswith(why) for c in handed)
    assert all(c.args[4] == AttemptOutcome.UNSUBMITTED for c in handed)
    assert all(c.kwargs == {"counts": False} for c in handed)
    if isinstance(error, OSError):
        assert f"(scratch {site.scratch})" in handed[0].args[3]
    assert site.claim_request is None
    assert json.loads(site.state_path.read_text())["jobs"].keys() == {"fake.1"}


def test_batch_jobs_of_stale_attempts_are_cancelled(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site()
    client.claims = [claim(1), claim(2)]
    site.step(0.0)
    stale_dir = Path(site.running["fake.1"].workdir)
    client.stale = {(1, 1)}
    done = site.step(1.0)
    assert client.calls_to("stale_attempts")[-1].args[1] == [(1, 1), (2, 1)]
    assert done.cancelled == 1 and batch.cancelled == ["fake.1"]
    assert list(site.running) == ["fake.2"] and not stale_dir.exists()
    assert client.calls_to("lost") == []  # the server ended the attempt itself


def test_claimed_attempts_never_submitted_are_handed_back_now_and_then(
    make_site: MakeSite, client: FakeClient
) -> None:
    site = make_site()
    client.claims = [claim(1)]
    client.unsubmitted_attempts = [(1, 1), (5, 2)]
    done = site.step(0.0)
    assert client.calls_to("unsubmitted")[0].args[1] == [1]  # the tasks the site knows
    (lost,) = client.calls_to("lost")
    assert lost.args[1:3] == (5, 2) and lost.args[4] == AttemptOutcome.UNSUBMITTED
    assert lost.kwargs == {"counts": False} and done.reset == 1
    site.step(CLEAN_EVERY - 1)
    assert len(client.calls_to("unsubmitted")) == 1
    site.step(CLEAN_EVERY)
    assert len(client.calls_to("unsubmitted")) == 2


def test_a_refused_hand_back_is_skipped(make_site: MakeSite, client: FakeClient) -> None:
    site = make_site()
    client.unsubmitted_attempts = [(5, 2), (6, 1)]
    client.fail("lost", NotFound("no attempt 2 of task 5"))
    done = site.step(0.0)
    assert done.reset == 1 and len(client.calls_to("lost")) == 2


def test_the_heartbeat_and_the_orphan_clean_keep_their_pace(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site()
    client.claims = [claim(1)]
    batch.set_state("lost.9", BatchState.RUNNING)  # a job of ours that no record names
    site.step(0.0)
    assert batch.cancelled == ["lost.9"] and list(site.running) == ["fake.1"]
    batch.set_state("lost.10", BatchState.PENDING)
    for now in (1.0, HEARTBEAT_EVERY - 1, HEARTBEAT_EVERY):
        site.step(now)
    assert len(client.calls_to("site_heartbeat")) == 2
    assert batch.cancelled == ["lost.9"]
    site.step(CLEAN_EVERY)
    assert batch.cancelled == ["lost.9", "lost.10"]


def test_register_names_the_slot_and_the_plugin(make_site: MakeSite, client: FakeClient) -> None:
    make_site().register()
    (call,) = client.calls_to("register_site")
    assert call.args[0] == "s"
    assert call.args[1].cpu == 1 and call.args[1].info["plugin"] == "fake"
