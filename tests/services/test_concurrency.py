"""Processes at once, and processes killed mid-transaction: no double claim, nothing lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from frazil.services import queries
from frazil.services.submit import submit
from frazil.store.schema import job, task, task_attempt
from tests.conftest import ROOT
from tests.services.conftest import make_config


def spawn(*args: object, start_at: float = 0.0) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.services.workers", *map(str, args)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        env={**os.environ, "START_AT": str(start_at)},
    )


def together() -> float:
    """A moment shortly ahead, by which every worker process has started."""
    return time.time() + 3.0


def wait_all(procs: list[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err.decode()[-3000:]


def url_of(db) -> str:
    return db.url.render_as_string(hide_password=False)


def claimed(path: Path) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines() if line]


def test_concurrent_claims_never_hand_out_a_task_twice(db, tmp_path):
    submit(db, make_config("flat", 5), jobs=300, now=time.time())
    outs = [tmp_path / f"claims{i}" for i in range(4)]
    go = together()
    wait_all([spawn("claim", url_of(db), f"site{i}", 25, outs[i], start_at=go) for i in range(4)])
    ids = [tid for out in outs for tid, _ in claimed(out)]
    assert len(ids) == 1500
    assert len(set(ids)) == 1500, "a task was claimed twice"
    # they really ran at once (SQLite's lock is not fair, so not every site gets work)
    assert sum(1 for out in outs if claimed(out)) >= 2
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(task_attempt)).scalar_one() == 1500
        statuses = dict(
            conn.execute(select(task.c.status, func.count()).group_by(task.c.status)).all()
        )
    assert statuses == {"queued": 1500}


def test_concurrent_completions_release_every_child_once(db, tmp_path):
    d = submit(db, make_config("diamond"), jobs=60, now=time.time())
    outs = [tmp_path / f"run{i}" for i in range(4)]
    go = together()
    wait_all([spawn("run", url_of(db), f"site{i}", 10, outs[i], start_at=go) for i in range(4)])
    runs = Counter(tid for out in outs for tid, _ in claimed(out))
    assert len(runs) == 240 and set(runs.values()) == {1}
    view = queries.dataset_status(db, d)
    assert view.dataset.status == "complete" and view.dataset.jobs_complete == 60
    assert view.counts == {name: {"complete": 60} for name in "abcd"}
    with db.read() as conn:
        bad = conn.execute(
            select(func.count()).select_from(job).where(job.c.n_complete != job.c.n_tasks)
        ).scalar_one()
    assert bad == 0


@contextmanager
def _snapshot(db) -> Iterator[Any]:
    """One read that sees the database at one moment. A worker killed just after it sent
    COMMIT may have its commit land a moment after it died; under READ COMMITTED each
    statement would see its own moment, and the counts could disagree with each other."""
    if db.backend == "sqlite":  # a read transaction is one snapshot already
        with db.read() as conn:
            yield conn
        return
    with db.engine.connect() as raw:
        conn = raw.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def _consistent(db, dataset_id: int) -> None:
    """Counters match rows; every queued task has exactly its one open attempt."""
    with _snapshot(db) as conn:
        from frazil.store.schema import dataset

        made = conn.execute(
            select(dataset.c.jobs_materialized).where(dataset.c.id == dataset_id)
        ).scalar_one()
        jobs = conn.execute(
            select(func.count()).select_from(job).where(job.c.dataset_id == dataset_id)
        ).scalar_one()
        tasks = conn.execute(
            select(func.count()).select_from(task).where(task.c.dataset_id == dataset_id)
        ).scalar_one()
        assert jobs == made and tasks == 5 * made
        rows = conn.execute(select(task.c.id, task.c.status, task.c.attempts)).all()
        open_attempts = Counter(
            (r.task_id, r.number)
            for r in conn.execute(
                select(task_attempt.c.task_id, task_attempt.c.number).where(
                    task_attempt.c.outcome == "open"
                )
            )
        )
        attempts = Counter(r.task_id for r in conn.execute(select(task_attempt.c.task_id)))
    for r in rows:
        if r.status == "queued":
            assert open_attempts[(r.id, r.attempts)] == 1 and attempts[r.id] == r.attempts
        else:
            assert r.status == "waiting" and r.attempts == 0 and attempts[r.id] == 0


@pytest.mark.slow
def test_killed_materializers_and_claimers_leave_a_consistent_database(db, tmp_path):
    rng = random.Random(7)
    d = submit(db, make_config("flat", 5), jobs=3000, now=time.time(), sync_jobs=0)
    for _ in range(4):  # kill a materializer at a random moment, check, repeat
        p = spawn("materialize", url_of(db), 100)
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        _consistent(db, d)
    wait_all([spawn("materialize", url_of(db), 500)])
    _consistent(db, d)
    assert queries.dataset_status(db, d).dataset.jobs_materialized == 3000

    outs = []
    for i in range(4):  # claimers killed mid-flight
        out = tmp_path / f"killed{i}"
        outs.append(out)
        p = spawn("claim", url_of(db), f"site{i}", 200, out)
        time.sleep(rng.uniform(0.5, 2.0))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        _consistent(db, d)
    final = tmp_path / "final"
    wait_all([spawn("claim", url_of(db), "finisher", 1000, final)])
    _consistent(db, d)
    with db.read() as conn:
        statuses = dict(
            conn.execute(select(task.c.status, func.count()).group_by(task.c.status)).all()
        )
    assert statuses == {"queued": 15000}
