"""The server's daemons on a real database."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from frazil.model.records import FileRecord, SiteResources
from frazil.server.daemons import collect_step, repair_step
from frazil.services import attempts, queries
from frazil.services.claim import claim
from frazil.services.submit import submit
from frazil.store.schema import file, job
from tests.services.conftest import make_config

SITE = SiteResources("s", cpu=4, memory=16, disk=100, time=24)


def run_all(db, tmp_path, now):
    """Run every ready task, each writing a job-temporary and a permanent file."""
    while claims := claim(db, SITE, 10, now):
        for c in claims:
            temp = tmp_path / f"temp-{c.task_id}"
            keep = tmp_path / f"keep-{c.task_id}"
            temp.write_text("t")
            keep.write_text("k")
            attempts.start(db, c.task_id, c.attempt, c.passkey, now=now)
            attempts.finish(db, c.task_id, c.attempt, c.passkey, now=now, files=[
                FileRecord(url=f"file://{temp}", movement="output", type="job_temp"),
                FileRecord(url=str(keep), movement="output", type="permanent"),
            ])  # fmt: skip


def test_collector_deletes_temporary_files_of_complete_jobs(db, tmp_path):
    now = time.time()
    submit(db, make_config("chain", 2), jobs=2, now=now)
    (c,) = claim(db, SITE, 1, now)  # job 0's first task
    assert c.job_index == 0
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=now)
    temp = tmp_path / "early"
    temp.write_text("x")
    attempts.finish(db, c.task_id, c.attempt, c.passkey, now=now, files=[
        FileRecord(url=f"file://{temp}", movement="output", type="job_temp")])  # fmt: skip
    assert collect_step(db, now) == 0 and temp.exists()  # its job is not complete yet
    run_all(db, tmp_path, now)
    assert collect_step(db, now) == 4
    assert not list(tmp_path.glob("temp-*")) and not temp.exists()
    assert len(list(tmp_path.glob("keep-*"))) == 3  # permanent files stay
    with db.read() as conn:
        deleted = conn.execute(select(file.c.deleted_at).where(file.c.type == "job_temp")).all()
    assert {r.deleted_at for r in deleted} == {now}
    assert collect_step(db, now) == 0


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
    monkeypatch.setattr("frazil.server.daemons.REPAIR_JOBS", 2)
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
