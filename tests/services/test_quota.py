"""Quotas: caps on the jobs and tasks of one dataset and of one submitter, on every backend."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from frazil.config import QuotaSettings
from frazil.errors import QuotaExceeded, Rejected
from frazil.services import queries
from frazil.services.quota import clear_quota, get_quota, list_quotas, set_quota
from frazil.services.submit import set_jobs, submit, truncate
from frazil.store.schema import dataset, event, job, task
from tests.services.conftest import make_config

NOW = 1_000_000.0
SMALL = QuotaSettings(dataset_jobs=100, dataset_tasks=250, jobs=150, tasks=400)


def rows(db, table) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_hundred_million_jobs_are_refused_at_once_with_the_cap_named(db):
    started = time.monotonic()
    with pytest.raises(QuotaExceeded) as info:
        submit(db, make_config("chain", 3), jobs=100_000_000, now=NOW, owner="alice")
    assert time.monotonic() - started < 1.0  # before the config is even checked
    assert str(info.value) == (
        "over the quota of 'alice': at most 1000000 jobs in one dataset; this dataset would "
        "have 100000000 (an administrator sets it: [quota] dataset_jobs in frazil.toml, or "
        "`frazil quota set alice --dataset-jobs N`)"
    )
    assert rows(db, dataset) == rows(db, job) == rows(db, task) == rows(db, event) == 0


def test_the_tasks_of_one_dataset_are_capped(db):
    submit(db, make_config("chain", 2), jobs=100, now=NOW, owner="alice", quotas=SMALL)
    with pytest.raises(QuotaExceeded, match=r"at most 250 tasks in one dataset; .* 100 x 3 tasks"):
        submit(db, make_config("chain", 3), jobs=100, now=NOW, owner="bob", quotas=SMALL)


def test_a_submitter_holds_at_most_their_jobs_and_tasks_not_yet_complete(db):
    first = submit(db, make_config("flat", 2), jobs=100, now=NOW, owner="alice", quotas=SMALL,
                   sync_jobs=10)  # fmt: skip
    with pytest.raises(QuotaExceeded, match="at most 150 jobs not yet complete; 100 now, and "
                       "this would add 60"):  # fmt: skip
        submit(db, make_config("flat", 1), jobs=60, now=NOW, owner="alice", quotas=SMALL)
    with pytest.raises(QuotaExceeded, match="at most 400 tasks of jobs not yet complete; 200 "
                       r"now, and this would add 225 \(.*\[quota\] tasks"):  # fmt: skip
        submit(db, make_config("flat", 5), jobs=45, now=NOW, owner="alice", quotas=SMALL)
    # someone else's datasets are not alice's
    submit(db, make_config("flat", 1), jobs=100, now=NOW, owner="bob", quotas=SMALL)
    # a truncated dataset holds only the jobs it made
    truncate(db, first, now=NOW)
    submit(db, make_config("flat", 1), jobs=60, now=NOW, owner="alice", quotas=SMALL)
    assert get_quota(db, "alice", SMALL).usage.jobs == 70


def test_set_jobs_keeps_to_the_quota_of_the_dataset_owner(db):
    d = submit(db, make_config("flat", 2), jobs=50, now=NOW, owner="alice", quotas=SMALL)
    with pytest.raises(QuotaExceeded, match="at most 100 jobs in one dataset; this dataset "
                       "would have 101"):  # fmt: skip
        set_jobs(db, d, 101, now=NOW, quotas=SMALL)
    submit(db, make_config("flat", 1), jobs=90, now=NOW, owner="alice", quotas=SMALL)
    with pytest.raises(QuotaExceeded, match="140 now, and this would add 20"):
        set_jobs(db, d, 70, now=NOW, quotas=SMALL)
    assert queries.dataset_status(db, d).dataset.jobs_submitted == 50
    set_jobs(db, d, 60, now=NOW, quotas=SMALL)


def test_an_administrator_sets_and_clears_a_submitters_caps(db):
    with pytest.raises(QuotaExceeded):
        submit(db, make_config("flat", 1), jobs=120, now=NOW, owner="alice", quotas=SMALL)
    q = set_quota(db, "alice", SMALL, now=NOW, actor="admin:root", dataset_jobs=500, jobs=500)
    assert (q.dataset_jobs, q.jobs, q.dataset_tasks, q.overridden) == (
        500,
        500,
        250,
        ("dataset_jobs", "jobs"),
    )
    submit(db, make_config("flat", 1), jobs=120, now=NOW, owner="alice", quotas=SMALL)
    with pytest.raises(QuotaExceeded):  # bob keeps the defaults
        submit(db, make_config("flat", 1), jobs=120, now=NOW, owner="bob", quotas=SMALL)
    set_quota(db, "alice", SMALL, now=NOW, actor="admin:root", jobs=None)  # back to default
    assert get_quota(db, "alice", SMALL).jobs == 150
    assert [q.submitter for q in list_quotas(db, SMALL)] == ["alice"]
    assert clear_quota(db, "alice", SMALL).overridden == ()
    assert list_quotas(db, SMALL) == []
    with pytest.raises(Rejected, match="unknown quota cap"):
        set_quota(db, "alice", SMALL, now=NOW, actor="admin:root", cpus=3)
