"""The server's daemons on a real database."""

from __future__ import annotations

import time

from sqlalchemy import update

from frazil.model.records import SiteResources
from frazil.server.daemons import server_daemons
from frazil.services import attempts, queries
from frazil.services.claim import claim
from frazil.services.recount import repair_step
from frazil.services.submit import submit
from frazil.store.schema import job
from tests.services.conftest import make_config

SITE = SiteResources(name="s", cpu=4, memory=16, disk=100, time=24)


def test_the_collector_runs_only_with_storage_roots(tmp_path):
    names = [d.name for d in server_daemons(None)]  # type: ignore[arg-type]
    assert "collector" not in names
    with_roots = server_daemons(None, storage_roots=[tmp_path])  # type: ignore[arg-type]
    assert [d.name for d in with_roots] == [*names, "collector"]


def test_repair_recounts_drifted_jobs(db):
    now = time.time()
    d = submit(db, make_config("flat", 1), jobs=3, now=now)
    for c in claim(db, SITE, 10, now):
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=now)
        attempts.finish(db, c.task_id, c.attempt, c.passkey, now=now)
    with db.begin() as conn:
        conn.execute(update(job).values(n_complete=0, status="processing"))
    assert repair_step(db, now) == 0  # the dataset is complete: nothing at work to repair
    d2 = submit(db, make_config("flat", 1), jobs=2, now=now)
    with db.begin() as conn:
        conn.execute(update(job).where(job.c.dataset_id == d2).values(n_failed=2, status="failed"))
    assert repair_step(db, now) == 1
    assert {j.status for j in queries.list_jobs(db, d2)} == {"processing"}
    assert queries.dataset_status(db, d).dataset.status == "complete"


def test_repair_works_through_a_dataset_a_slice_of_jobs_at_a_time(db, monkeypatch):
    monkeypatch.setattr("frazil.services.recount.REPAIR_JOBS", 2)
    now = time.time()
    d = submit(db, make_config("flat", 1), jobs=5, now=now)
    done = claim(db, SITE, 3, now)
    for c in done:
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=now)
        attempts.finish(db, c.task_id, c.attempt, c.passkey, now=now)
    finished = {queries.task_detail(db, c.task_id).task.job_index for c in done}
    with db.begin() as conn:  # every job drifts: its counters, and the finished ones' status
        conn.execute(
            update(job).where(job.c.dataset_id == d).values(n_complete=0, status="processing")
        )
    assert repair_step(db, now) == 1
    jobs = {j.index: (j.status, j.complete) for j in queries.list_jobs(db, d)}
    assert jobs == {i: ("complete", 1) if i in finished else ("processing", 0) for i in range(5)}
    view = queries.dataset_status(db, d).dataset
    assert view.jobs_complete == 3 and view.jobs_failed == 0 and view.status == "processing"
