"""The materializer on every backend: one dataset's bad values never stall the others."""

from sqlalchemy import update

from frazil.services import queries
from frazil.services.materialize import CHUNK_JOBS, materialize_step
from frazil.services.submit import set_jobs, submit
from frazil.store.schema import dataset_config
from tests.conftest import store_unchecked
from tests.services.conftest import make_config

NOW = 4_000_000.0


def _jobs_by_status(db, d):
    view = queries.dataset_status(db, d).dataset
    failed = [j.index for j in queries.list_jobs(db, d, status="failed", limit=10_000)]
    return view.jobs_materialized, failed


def test_a_poisoned_job_among_4000_fails_alone_and_every_dataset_grows(db):
    poisoned = make_config("flat", 2).model_copy(deep=True)
    t0, t1 = poisoned.tasks
    # 2500 overflows a float, 3100 the 32-bit column that keeps gpu counts: submit's check
    # would find them, but a check that sampled its jobs may not (stored here unchecked)
    poisoned = poisoned.model_copy(update={"tasks": [
        t0.model_copy(update={"requirements": t0.requirements.model_copy(
            update={"cpu": "$eval(2**1100 if $args(job) == 2500 else 1)"})}),
        t1.model_copy(update={"requirements": t1.requirements.model_copy(
            update={"gpu": "$eval(2**40 if $args(job) == 3100 else 0)"})}),
    ]})  # fmt: skip
    bad = submit(db, make_config("flat", 2), jobs=4000, now=NOW, priority=2.0)  # served first
    store_unchecked(db, bad, poisoned)
    good = submit(db, make_config("flat", 1), jobs=4000, now=NOW)
    assert _jobs_by_status(db, bad) == (CHUNK_JOBS, [])
    assert materialize_step(db, NOW) == 4000
    assert _jobs_by_status(db, bad) == (4000, [2500, 3100])
    assert _jobs_by_status(db, good) == (4000, [])
    view = queries.dataset_status(db, bad)
    assert view.dataset.jobs_failed == 2 and view.dataset.status == "errors"
    assert view.counts["t0"] == {"waiting": 3998, "failed": 2}
    reasons = {e.object_id: e.reason for e in queries.events(db, bad) if e.action == "materialize"}
    assert reasons == {
        f"{bad}.2500": "tasks[0].requirements.cpu: must be a whole number from 0 to 1000000, "
        "got a 1101-bit number",
        f"{bad}.3100": "tasks[1].requirements.gpu: must be a whole number from 0 to 1000000, "
        "got 1099511627776",
    }
    # and the next round goes on growing the others
    set_jobs(db, good, 4500, now=NOW)
    assert materialize_step(db, NOW) == 500
    assert _jobs_by_status(db, good) == (4500, [])


def test_a_dataset_whose_chunk_fails_is_skipped_and_the_others_go_on(db):
    broken = submit(db, make_config("flat", 1), jobs=30, now=NOW, priority=2.0, sync_jobs=10)
    fine = submit(db, make_config("flat", 1), jobs=30, now=NOW, sync_jobs=10)
    with db.begin() as conn:  # a stored config that no longer parses
        conn.execute(
            update(dataset_config)
            .where(dataset_config.c.dataset_id == broken)
            .values(config="{}", hash="0" * 64)
        )
    assert materialize_step(db, NOW) == 20
    assert _jobs_by_status(db, fine) == (30, [])
    assert _jobs_by_status(db, broken) == (10, [])  # nothing half-made; tried again next round
