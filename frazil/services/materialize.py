"""Materialization: turning a dataset's ``jobs_submitted`` into job and task rows, in chunks.

Each chunk is one transaction that first claims its range by moving ``jobs_materialized``
forward (compare-and-set), then inserts the jobs and their tasks. A crash loses at most the
chunk in flight, whose transaction rolls back; the next step starts where the counter says.

Requirements are evaluated per task once per dataset when they hold no expression, and per
job when they do. A job whose requirements cannot be evaluated gets its tasks created
``failed``, with the reason in the audit trail, so that one bad job does not stop the rest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, insert, select, update

from frazil.errors import ExpressionError
from frazil.model.resolve import JobInfo, ResolvedRequirements, Resolver
from frazil.model.rng import job_seed
from frazil.model.spec import DatasetConfig
from frazil.model.states import DatasetStatus, JobStatus, TaskStatus
from frazil.services.transitions import parents_of, record_event, refresh_dataset
from frazil.store.db import Database
from frazil.store.schema import dataset, dataset_config, job, task

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


@lru_cache(maxsize=32)
def load_version(text_hash: str, text: str) -> DatasetConfig:
    """A stored config, parsed once per process (keyed by its hash)."""
    return DatasetConfig.model_validate_json(text)


def config_of(conn: Connection, dataset_id: int, version: int) -> DatasetConfig:
    """Version ``version`` of a dataset's config."""
    row = conn.execute(
        select(dataset_config.c.config, dataset_config.c.hash).where(
            dataset_config.c.dataset_id == dataset_id, dataset_config.c.version == version
        )
    ).one()
    return load_version(row.hash, row.config)


def _templates(conn: Connection, dataset_id: int, config: DatasetConfig) -> list[_Template]:
    resolver = Resolver(config, JobInfo(defer_site_values=True))
    out = []
    for i, t in enumerate(config.tasks):
        dynamic = _has_expression(t.requirements.model_dump())
        static = None if dynamic else resolver.requirements(i)
        out.append(_Template(i, t.name, len(parents_of(conn, dataset_id, i)), static))
    return out


def _joined(names: Iterable[str]) -> str | None:
    items = list(names)
    return "|" + "|".join(items) + "|" if items else None


def _task_values(req: ResolvedRequirements) -> dict[str, Any]:
    return {
        "cpu": req.cpu,
        "gpu": req.gpu,
        "memory": req.memory,
        "disk": req.disk,
        "time": req.time,
        "os": _joined(req.os),
        "site_req": _joined(req.site),
        "req_extra": json.dumps(dict(req.extra), sort_keys=True) if req.extra else None,
    }


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
    jobs: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    for index in range(start, stop):
        failed_reason = ""
        requirements: list[ResolvedRequirements] = []
        if dynamic:
            info = JobInfo(
                dataset=dataset_id,
                job=index,
                jobs_submitted=d.jobs_submitted,
                dataset_seed=d.seed,
                defer_site_values=True,
            )
            resolver = Resolver(config, info)
            for t in templates:
                try:
                    requirements.append(t.static or resolver.requirements(t.index))
                except ExpressionError as exc:
                    failed_reason = str(exc)
                    break
        else:
            requirements = [t.static for t in templates if t.static is not None]
        n = len(templates)
        jobs.append(
            {
                "dataset_id": dataset_id,
                "job_index": index,
                "status": (JobStatus.FAILED if failed_reason else JobStatus.PROCESSING).value,
                "seed": job_seed(d.seed, index),
                "n_tasks": n,
                "n_complete": 0,
                "n_failed": n if failed_reason else 0,
                "n_suspended": 0,
                "failures": 0,
                "status_changed": now,
            }
        )
        for t in templates:
            if failed_reason:
                status = TaskStatus.FAILED
            else:
                status = TaskStatus.WAITING if t.parents == 0 else TaskStatus.IDLE
            req = requirements[t.index] if not failed_reason else _DEFAULT
            tasks.append(
                {
                    "dataset_id": dataset_id,
                    "job_index": index,
                    "task_index": t.index,
                    "name": t.name,
                    "status": status.value,
                    "deps_pending": t.parents,
                    "failures": 0,
                    "attempts": 0,
                    **_task_values(req),
                    "status_changed": now,
                    "config_version": d.config_version,
                }
            )
        if failed_reason:
            record_event(
                conn, now, actor, "job", f"{dataset_id}.{index}", "materialize",
                dataset_id=dataset_id, new=JobStatus.FAILED.value, reason=failed_reason,
            )  # fmt: skip
    conn.execute(insert(job), jobs)
    conn.execute(insert(task), tasks)
    failed = sum(1 for j in jobs if j["status"] == JobStatus.FAILED.value)
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
                ).scalar_one()
                size = min(chunk, max_jobs - made)
                return materialize_range(
                    conn, dataset_id, current + size, now, "daemon:materializer"
                )

            n = db.transaction(one_chunk)
            if n == 0:
                break
            made += n
    if made:
        log.info("materialized %d jobs", made)
    return made
