import pytest

from frazil.errors import NotFound, Rejected
from frazil.model.records import SiteResources
from frazil.services import attempts, queries
from frazil.services.claim import claim
from frazil.services.control import Scope, hard_reset, reset, resume, set_priority, suspend
from frazil.services.recount import recount
from frazil.services.submit import submit
from frazil.wire import Failure
from tests.services.conftest import make_config

NOW = 4_000_000.0
SITE = SiteResources(name="s", cpu=4, memory=16, disk=100, time=24)


def complete_ready(db, n=100, now=NOW):
    for c in claim(db, SITE, n, now):
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=now)
        attempts.finish(db, c.task_id, c.attempt, c.passkey, now=now)


def states(db, d, job=None):
    return sorted(
        (t.job_index, t.name, t.status) for t in queries.list_tasks(db, d, job=job, limit=1000)
    )


def test_suspend_and_resume_a_dataset(db):
    d = submit(db, make_config("chain", 3), jobs=2, now=NOW)
    complete_ready(db)  # t0 of both jobs
    running = claim(db, SITE, 1, NOW)[0]  # t1 of job 0 is queued
    n = suspend(db, Scope(d), now=NOW + 1)
    assert n == 4  # t1 (queued), t1 (waiting), t2 x2 (idle)
    view = queries.dataset_status(db, d)
    assert view.dataset.status == "suspended"
    assert view.counts["t1"] == {"suspended": 2} and view.counts["t0"] == {"complete": 2}
    assert claim(db, SITE, 10, NOW) == []
    with pytest.raises(Exception, match="no longer current"):
        attempts.start(db, running.task_id, running.attempt, running.passkey, now=NOW)
    assert resume(db, Scope(d), now=NOW + 2) == 4
    view = queries.dataset_status(db, d)
    assert view.dataset.status == "processing"
    assert view.counts["t1"] == {"waiting": 2} and view.counts["t2"] == {"idle": 2}
    assert len(claim(db, SITE, 10, NOW)) == 2


def test_suspend_one_job_then_one_task_name(db):
    d = submit(db, make_config("flat", 2), jobs=3, now=NOW)
    assert suspend(db, Scope(d, job=1), now=NOW) == 2
    assert queries.list_jobs(db, d)[1].status == "suspended"
    assert queries.dataset_status(db, d).dataset.status == "processing"
    assert suspend(db, Scope(d, task="t1"), now=NOW) == 2  # the two not already suspended
    assert resume(db, Scope(d, job=1), now=NOW) == 2
    assert {(t.job_index, t.status) for t in queries.list_tasks(db, d, name="t1")} == {
        (0, "suspended"),
        (1, "waiting"),
        (2, "suspended"),
    }


def test_reset_failed_tasks_gives_them_another_try(db):
    d = submit(db, make_config("flat", 1), jobs=1, now=NOW)  # max_failures 3
    for _ in range(3):
        (c,) = claim(db, SITE, 1, NOW)
        attempts.fail(db, c.task_id, c.attempt, c.passkey, Failure("x"), now=NOW)
    assert queries.dataset_status(db, d).dataset.status == "errors"
    assert reset(db, Scope(d), now=NOW) == 1
    (t,) = queries.list_tasks(db, d)
    assert (t.status, t.failures) == ("waiting", 4)
    assert queries.dataset_status(db, d).dataset.status == "processing"
    (c,) = claim(db, SITE, 1, NOW)
    attempts.fail(db, c.task_id, c.attempt, c.passkey, Failure("again"), now=NOW)
    assert queries.list_tasks(db, d)[0].status == "failed"


def test_hard_reset_of_a_task_takes_its_downstream_along(db):
    d = submit(db, make_config("diamond"), jobs=2, now=NOW)
    for _ in range(3):
        complete_ready(db)
    assert queries.dataset_status(db, d).dataset.status == "complete"
    n = hard_reset(db, Scope(d, job=0, task="b"), now=NOW + 1)
    assert n == 2  # b and d of job 0
    assert states(db, d, job=0) == [
        (0, "a", "complete"),
        (0, "b", "waiting"),
        (0, "c", "complete"),
        (0, "d", "idle"),
    ]
    assert queries.dataset_status(db, d).dataset.status == "processing"
    assert [j.status for j in queries.list_jobs(db, d)] == ["processing", "complete"]
    complete_ready(db)  # b
    complete_ready(db)  # d
    assert queries.dataset_status(db, d).dataset.status == "complete"


def test_hard_reset_of_a_dataset_starts_over(db):
    d = submit(db, make_config("chain", 2), jobs=2, now=NOW)
    (c,) = claim(db, SITE, 1, NOW)
    attempts.fail(db, c.task_id, c.attempt, c.passkey, Failure("x"), now=NOW)
    complete_ready(db)
    assert hard_reset(db, Scope(d), now=NOW) == 4
    tasks = queries.list_tasks(db, d)
    assert {(t.name, t.status, t.failures) for t in tasks} == {
        ("t0", "waiting", 0),
        ("t1", "idle", 0),
    }
    assert {j.status for j in queries.list_jobs(db, d)} == {"processing"}


def test_task_by_id_scope(db):
    d = submit(db, make_config("flat", 2), jobs=2, now=NOW)
    target = queries.list_tasks(db, d, job=1, name="t1")[0]
    assert suspend(db, Scope(d, task_id=target.id), now=NOW) == 1
    assert [t.id for t in queries.list_tasks(db, d, status="suspended")] == [target.id]
    with pytest.raises(NotFound):
        suspend(db, Scope(d, task_id=target.id + 1000), now=NOW)
    with pytest.raises(NotFound):
        suspend(db, Scope(d, job=99), now=NOW)
    with pytest.raises(NotFound):
        suspend(db, Scope(d, task="nope"), now=NOW)


def test_events_record_who_did_what(db):
    d = submit(db, make_config("flat", 1), jobs=1, now=NOW, actor="user:alice")
    suspend(db, Scope(d), now=NOW + 1, actor="user:bob", reason="disk full at the storage")
    kinds = [(e.actor, e.action) for e in queries.events(db, d)]
    assert ("user:bob", "suspend") in kinds and ("user:alice", "submit") in kinds
    reasons = [e.reason for e in queries.events(db, d) if e.action == "suspend"]
    assert reasons == ["disk full at the storage"]


def test_set_priority(db):
    d = submit(db, make_config(), jobs=1, now=NOW)
    set_priority(db, d, 5.0, now=NOW)
    assert queries.dataset_status(db, d).dataset.priority == 5.0
    with pytest.raises(Rejected):
        set_priority(db, d, -1, now=NOW)


def test_recount_repairs_drifted_counters(db):
    from sqlalchemy import update

    from frazil.store.schema import job

    d = submit(db, make_config("flat", 1), jobs=2, now=NOW)
    complete_ready(db)
    assert queries.dataset_status(db, d).dataset.status == "complete"
    with db.begin() as conn:  # simulate drift
        conn.execute(update(job).values(n_complete=0, status="processing"))
    with db.begin() as conn:
        recount(conn, d, NOW, "test")
    assert {j.status for j in queries.list_jobs(db, d)} == {"complete"}
    assert queries.dataset_status(db, d).dataset.jobs_complete == 2
