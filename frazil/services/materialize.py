"""Materialization: turning a dataset's ``jobs_submitted`` into job and task rows, in chunks.

Each chunk is one transaction that first claims its range by moving ``jobs_materialized``
forward (compare-and-set), then inserts the jobs and their tasks. A crash loses at most the
chunk in flight, whose transaction rolls back; the next step starts where the counter says.

Requirements are evaluated per task once per dataset when they hold no expression, and per
job when they do, and every resolved number is range-checked (``model/limits.py``) before it
reaches a column. A job whose requirements cannot be evaluated or are out of range gets its
tasks created ``failed``, with the located reason in the audit trail, so that one bad job does
not stop the rest of its chunk. A dataset whose chunk fails for any other reason is logged and
skipped for the round: the other datasets' jobs are still made.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from frazil.errors import ExpressionError, StoreError
from frazil.model.resolve import JobInfo, ResolvedRequirements, Resolver
from frazil.model.rng import job_seed
from frazil.model.spec import DatasetConfig
from frazil.model.states import DatasetStatus, JobStatus, TaskStatus
from frazil.services.datasets import config_of
from frazil.services.transitions import dependency_edges, record_event, refresh_dataset
from frazil.store.bulk import bulk_insert
from frazil.store.db import Database, mark_ready
from frazil.store.schema import dataset, job, task

log = logging.getLogger(__name__)

#: Jobs per materialization transaction.
CHUNK_JOBS = 2000


@dataclass(frozen=True)
class _Template:
    index: int
    name: str
    parents: int
    static: ResolvedRequirements | None  # None: the requirements hold expressions


def _has_expression(value: Any) -> bool:
    if isinstance(value, str):
        return "$" in value
    if isinstance(value, list):
        return any(_has_expression(v) for v in value)
    if isinstance(value, dict):
        return any(_has_expression(v) for v in value.values())
    return False


#: Stored configs parsed, by the sha256 of their text (at most ``_PARSED_MAX``, the most
#: recently used kept): the hash names the text, so an entry can never stand for another text.
def _templates(conn: Connection, dataset_id: int, config: DatasetConfig) -> list[_Template]:
    resolver = Resolver(config, JobInfo(defer_site_values=True))
    parents = Counter(child for child, _ in dependency_edges(conn, dataset_id))
    out = []
    for i, t in enumerate(config.tasks):
        dynamic = _has_expression(t.requirements.model_dump())
        static = None if dynamic else resolver.requirements(i)
        out.append(_Template(i, t.name, parents[i], static))
    return out


def _joined(names: Iterable[str]) -> str | None:
    items = list(names)
    return "|" + "|".join(items) + "|" if items else None


JOB_COLUMNS = (
    "dataset_id", "job_index", "status", "seed", "n_tasks", "n_complete", "n_failed",
    "n_suspended", "failures", "status_changed",
)  # fmt: skip
TASK_COLUMNS = (
    "dataset_id", "job_index", "task_index", "name", "status", "deps_pending", "failures",
    "attempts", "cpu", "gpu", "memory", "disk", "time", "os", "site_req", "req_extra",
    "status_changed", "config_version",
)  # fmt: skip
_WAITING = TaskStatus.WAITING.value
_IDLE = TaskStatus.IDLE.value


def _task_values(req: ResolvedRequirements) -> tuple[Any, ...]:
    """The requirement columns of a task row, in ``TASK_COLUMNS`` order."""
    extra = json.dumps(dict(req.extra), sort_keys=True) if req.extra else None
    return (
        req.cpu, req.gpu, float(req.memory), float(req.disk), float(req.time),
        _joined(req.os), _joined(req.site), extra,
    )  # fmt: skip


_DEFAULT = ResolvedRequirements(cpu=1, gpu=0, memory=1.0, disk=1.0, time=1.0)


def materialize_range(conn: Connection, dataset_id: int, stop: int, now: float, actor: str) -> int:
    """Create jobs up to index ``stop`` (exclusive) of a dataset; returns how many were made."""
    d = conn.execute(
        select(
            dataset.c.jobs_materialized,
            dataset.c.jobs_submitted,
            dataset.c.seed,
            dataset.c.config_version,
        ).where(dataset.c.id == dataset_id)
    ).one()
    start = d.jobs_materialized
    stop = min(stop, d.jobs_submitted)
    if stop <= start:
        return 0
    claimed = conn.execute(
        update(dataset)
        .where(dataset.c.id == dataset_id, dataset.c.jobs_materialized == start)
        .values(jobs_materialized=stop, updated_at=now)
    )
    if claimed.rowcount != 1:
        return 0  # another materializer took this range
    config = config_of(conn, dataset_id, d.config_version)
    templates = _templates(conn, dataset_id, config)
    dynamic = any(t.static is None for t in templates)
    jobs: list[tuple[Any, ...]] = []
    tasks: list[tuple[Any, ...]] = []
    static: list[tuple[Any, ...] | None] = [
        _task_values(t.static) if t.static is not None else None for t in templates
    ]
    failed = 0
    traced = False
    for index in range(start, stop):
        failed_reason = ""
        values: list[tuple[Any, ...] | None] = static
        if dynamic:
            info = JobInfo(
                dataset=dataset_id,
                job=index,
                jobs_submitted=d.jobs_submitted,
                dataset_seed=d.seed,
                defer_site_values=True,
            )
            resolver = Resolver(config, info)
            values = []
            for t, v in zip(templates, static, strict=True):
                try:
                    values.append(v or _task_values(resolver.requirements(t.index)))
                except ExpressionError as exc:
                    failed_reason = str(exc)
                    break
                except Exception as exc:  # a user's values must not stop everyone's chunk
                    if not traced:  # one traceback per chunk is enough to see why
                        traced = True
                        log.warning("dataset %d job %d cannot be materialized", dataset_id,
                                    index, exc_info=True)  # fmt: skip
                    failed_reason = f"tasks[{t.index}]: cannot be resolved: {exc!r}"[:2000]
                    break
        n = len(templates)
        job_status = JobStatus.FAILED if failed_reason else JobStatus.PROCESSING
        jobs.append(
            (dataset_id, index, job_status.value, job_seed(d.seed, index), n, 0,
             n if failed_reason else 0, 0, 0, now)
        )  # fmt: skip
        for t in templates:
            req = values[t.index] if not failed_reason else None
            if req is None:
                status, req = TaskStatus.FAILED.value, _task_values(_DEFAULT)
            else:
                status = _WAITING if t.parents == 0 else _IDLE
            tasks.append(
                (dataset_id, index, t.index, t.name, status, t.parents, 0, 0, *req, now,
                 d.config_version)
            )  # fmt: skip
        if failed_reason:
            failed += 1
            record_event(
                conn, now, actor, "job", f"{dataset_id}.{index}", "materialize",
                dataset_id=dataset_id, new=JobStatus.FAILED.value, reason=failed_reason,
            )  # fmt: skip
    bulk_insert(conn, job, JOB_COLUMNS, jobs)
    bulk_insert(conn, task, TASK_COLUMNS, tasks)
    mark_ready(conn, sum(1 for t in tasks if t[4] == _WAITING))
    if failed:
        conn.execute(
            update(dataset)
            .where(dataset.c.id == dataset_id)
            .values(jobs_failed=dataset.c.jobs_failed + failed)
        )
    refresh_dataset(conn, dataset_id, now, actor)
    return int(stop - start)


def pending_datasets(conn: Connection) -> list[int]:
    """Datasets with jobs still to materialize (suspended ones wait)."""
    rows = conn.execute(
        select(dataset.c.id)
        .where(
            dataset.c.jobs_materialized < dataset.c.jobs_submitted,
            dataset.c.status != DatasetStatus.SUSPENDED.value,
        )
        .order_by(dataset.c.priority.desc(), dataset.c.id)
    ).all()
    return [r.id for r in rows]


def materialize_step(
    db: Database, now: float, *, max_jobs: int = 20_000, chunk: int = CHUNK_JOBS
) -> int:
    """One round of the materializer daemon: up to ``max_jobs`` jobs, ``chunk`` at a time."""
    with db.read() as conn:
        todo = pending_datasets(conn)
    made = 0
    for dataset_id in todo:
        while made < max_jobs:

            def one_chunk(conn: Connection, dataset_id: int = dataset_id, made: int = made) -> int:
                current = conn.execute(
                    select(dataset.c.jobs_materialized).where(dataset.c.id == dataset_id)
                ).scalar()
                if current is None:  # deleted since this round began
                    return 0
                size = min(chunk, max_jobs - made)
                return materialize_range(
                    conn, dataset_id, current + size, now, "daemon:materializer"
                )

            try:
                n = db.transaction(one_chunk)
            except StoreError:
                raise  # the database itself, not this dataset: the supervisor backs off
            except Exception:
                log.exception("dataset %d: a chunk of jobs failed; the others go on", dataset_id)
                break
            if n == 0:
                break
            made += n
    if made:
        log.info("materialized %d jobs", made)
    return made
