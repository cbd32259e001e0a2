"""The state file a site keeps across restarts, in this format and in the one before it."""

from __future__ import annotations

import json

from frazil.batch.base import BatchState
from frazil.model.states import AttemptOutcome
from frazil.site.records import PilotJob, ReservedJob, TaskJob
from frazil.testing import FakeBatch, FakeClient
from tests.site.conftest import MakeSite

OLD_STATE = {
    "running": {
        "fake.1": {"task_id": 4, "attempt": 2, "batch_id": "fake.1", "workdir": "/w/1",
                   "submitted_at": 10.0, "reserved": False, "pilot_id": 0},
        "fake.2": {"task_id": 5, "attempt": 0, "batch_id": "fake.2", "workdir": "/w/2",
                   "submitted_at": 11.0, "reserved": True, "pilot_id": 0},
        "fake.3": {"task_id": 0, "attempt": 0, "batch_id": "fake.3", "workdir": "/w/3",
                   "submitted_at": 12.0, "reserved": False, "pilot_id": 9},
    },
    "claim_request": "r" * 43,
}  # fmt: skip


def test_a_state_file_of_the_daemon_before_the_modes_split_still_loads(
    make_site: MakeSite, client: FakeClient, batch: FakeBatch
) -> None:
    site = make_site()
    site.state_path.parent.mkdir(parents=True)
    site.state_path.write_text(json.dumps(OLD_STATE))
    site = make_site()
    assert site.running == {
        "fake.1": TaskJob("fake.1", "/w/1", 10.0, task_id=4, attempt=2),
        "fake.2": ReservedJob("fake.2", "/w/2", 11.0, task_id=5),
        "fake.3": PilotJob("fake.3", "/w/3", 12.0, pilot_id=9),
    }
    assert site.claim_request == "r" * 43
    # every one of them is still watched and reported, whatever the site's mode is now
    for batch_id in ("fake.1", "fake.2", "fake.3"):
        batch.set_state(batch_id, BatchState.TIMEOUT)
    client.pilot_held = 1
    done = site.step(0.0)
    assert done.ended == 3 and done.reset == 2
    (lost,) = client.calls_to("lost")
    assert lost.args[1:3] == (4, 2) and lost.args[4] == AttemptOutcome.TIMEOUT
    (ended,) = client.calls_to("pilot_ended")
    assert ended.args[1] == 9 and ended.args[3] == AttemptOutcome.TIMEOUT
    # the repeated claim went out with the saved id, and the file is now of the new format
    assert client.calls_to("claim")[0].kwargs["request"] == "r" * 43
    saved = json.loads(site.state_path.read_text())
    assert "running" not in saved and saved["jobs"] == {}


def test_the_state_file_round_trips_every_record(make_site: MakeSite) -> None:
    site = make_site()
    jobs = [
        TaskJob("a.1", "/w/a", 1.5, task_id=1, attempt=3),
        ReservedJob("a.2", "/w/b", 2.5, task_id=2),
        PilotJob("a.3", "/w/c", 3.5, pilot_id=4),
    ]
    site.tracker.track(*jobs)
    saved = json.loads(site.state_path.read_text())
    assert saved["jobs"]["a.3"] == {"kind": "pilot", "batch_id": "a.3", "workdir": "/w/c",
                                    "submitted_at": 3.5, "pilot_id": 4}  # fmt: skip
    assert make_site().running == {j.batch_id: j for j in jobs}
    assert make_site().tracker.task_ids() == [1, 2]


def test_no_state_file_is_no_job(make_site: MakeSite) -> None:
    site = make_site()
    assert site.running == {} and site.claim_request is None
    assert not site.state_path.exists()
