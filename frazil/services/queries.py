"""Read-only views of the production database (for the CLI, and later the API and web)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, func, select

from frazil.errors import BadRequest, NotFound
from frazil.model.states import AttemptOutcome, DatasetStatus, JobStatus, TaskStatus
from frazil.services.control import ACTIONS
from frazil.services.datasets import config_of, find_dataset
from frazil.services.transitions import parents_of
from frazil.store.db import Database
from frazil.store.schema import (
    config_module,
    config_parameter,
    config_tray,
    dataset,
    dataset_config,
    event,
    file,
    job,
    task,
    task_attempt,
    task_log,
    task_stat,
)
from frazil.wire import (
    AttemptView,
    ConfigVersion,
    DatasetStatusView,
    DatasetView,
    EventView,
    FileRecord,
    JobView,
    LogView,
    Page,
    TaskDetail,
    TaskView,
)


def _dataset_view(r: Any) -> DatasetView:
    return DatasetView(
        id=r.id,
        alias=r.alias,
        description=r.description,
        owner=r.owner,
        status=r.status,
        priority=r.priority,
        jobs_submitted=r.jobs_submitted,
        jobs_materialized=r.jobs_materialized,
        jobs_complete=r.jobs_complete,
        jobs_failed=r.jobs_failed,
        tasks_per_job=r.tasks_per_job,
        config_version=r.config_version,
        debug=bool(r.debug),
        truncated=bool(r.truncated),
        always_active=bool(r.always_active),
        created_at=r.created_at,
    )


def _status(kind: type[StrEnum], value: str | None, what: str) -> str | None:
    """``value`` when it is one of ``kind``'s states; ``BadRequest`` naming them otherwise."""
    if value is None or value in kind.__members__.values():
        return value
    names = ", ".join(s.value for s in kind)
    raise BadRequest(f"no {what} state {value!r}; {what} states: {names}")


def list_datasets(
    db: Database, *, status: str | None = None, where: ColumnElement[bool] | None = None
) -> list[DatasetView]:
    """Every dataset (that matches ``where``), newest first."""
    stmt = select(dataset).order_by(dataset.c.id.desc())
    if where is not None:
        stmt = stmt.where(where)
    if _status(DatasetStatus, status, "dataset") is not None:
        stmt = stmt.where(dataset.c.status == status)
    with db.read() as conn:
        return [_dataset_view(r) for r in conn.execute(stmt)]


def dataset_status(db: Database, ref: int | str, *, breakdown: bool = False) -> DatasetStatusView:
    """A dataset and its task counts per task name and state (with ``breakdown``, also per
    site and state, and per task name and phase of the tasks being processed)."""
    with db.read() as conn:
        dataset_id = find_dataset(conn, ref)
        d = _dataset_view(conn.execute(select(dataset).where(dataset.c.id == dataset_id)).one())
        counts: dict[str, dict[str, int]] = {}
        rows = conn.execute(
            select(task.c.task_index, task.c.name, task.c.status, func.count().label("n"))
            .where(task.c.dataset_id == dataset_id)
            .group_by(task.c.task_index, task.c.name, task.c.status)
            .order_by(task.c.task_index)
        )
        for r in rows:
            counts.setdefault(r.name, {})[r.status] = int(r.n)
        jobs = {
            r.status: int(r.n)
            for r in conn.execute(
                select(job.c.status, func.count().label("n"))
                .where(job.c.dataset_id == dataset_id)
                .group_by(job.c.status)
            )
        }
        by_site: dict[str, dict[str, int]] = {}
        by_phase: dict[str, dict[str, int]] = {}
        if breakdown:
            for r in conn.execute(
                select(task.c.site, task.c.status, func.count().label("n"))
                .where(task.c.dataset_id == dataset_id, task.c.site.is_not(None))
                .group_by(task.c.site, task.c.status)
                .order_by(task.c.site)
            ):
                by_site.setdefault(r.site, {})[r.status] = int(r.n)
            for r in conn.execute(
                select(task.c.task_index, task.c.name, task.c.phase, func.count().label("n"))
                .where(task.c.dataset_id == dataset_id, task.c.status == TaskStatus.PROCESSING)
                .group_by(task.c.task_index, task.c.name, task.c.phase)
                .order_by(task.c.task_index)
            ):
                by_phase.setdefault(r.name, {})[r.phase or "-"] = int(r.n)
    return DatasetStatusView(d, counts, jobs, by_site, by_phase)


def _jobs_where(conn: Connection, ref: int | str, status: str | None) -> Select[Any]:
    dataset_id = find_dataset(conn, ref)
    stmt = select(job).where(job.c.dataset_id == dataset_id)
    if _status(JobStatus, status, "job") is not None:
        stmt = stmt.where(job.c.status == status)
    return stmt


def _job_view(r: Any) -> JobView:
    return JobView(
        dataset_id=r.dataset_id,
        index=r.job_index,
        status=r.status,
        seed=r.seed,
        tasks=r.n_tasks,
        complete=r.n_complete,
        failed=r.n_failed,
        failures=r.failures,
        status_changed=r.status_changed,
    )


def list_jobs(
    db: Database, ref: int | str, *, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[JobView]:
    """A dataset's jobs in index order."""
    return jobs_page(db, ref, status=status, limit=limit, offset=offset, count=False).items


def jobs_page(
    db: Database, ref: int | str, *, status: str | None = None, limit: int = 100,
    offset: int = 0, count: bool = True,
) -> Page[JobView]:  # fmt: skip
    """A page of a dataset's jobs in index order, and how many there are in all (-1 when
    not ``count``); an unknown state is ``BadRequest``."""
    with db.read() as conn:
        stmt = _jobs_where(conn, ref, status)
        rows = conn.execute(stmt.order_by(job.c.job_index).limit(limit).offset(offset))
        items = [_job_view(r) for r in rows]
        return Page(items, _count(conn, stmt) if count else -1)


def _count(conn: Connection, stmt: Select[Any]) -> int:
    return int(conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())


def _task_view(r: Any) -> TaskView:
    return TaskView(
        id=r.id,
        dataset_id=r.dataset_id,
        job_index=r.job_index,
        task_index=r.task_index,
        name=r.name,
        status=r.status,
        failures=r.failures,
        attempts=r.attempts,
        site=r.site,
        phase=r.phase,
        cpu=r.cpu,
        gpu=r.gpu,
        memory=r.memory,
        disk=r.disk,
        time=r.time,
        status_changed=r.status_changed,
    )


def list_tasks(
    db: Database, ref: int | str, *, status: str | None = None, job: int | None = None,
    name: str | None = None, limit: int = 100, offset: int = 0,
) -> list[TaskView]:  # fmt: skip
    """A dataset's tasks, filtered, in job and task order."""
    return tasks_page(
        db, ref, status=status, job=job, name=name, limit=limit, offset=offset, count=False
    ).items


def tasks_page(
    db: Database, ref: int | str, *, status: str | None = None, job: int | None = None,
    name: str | None = None, limit: int = 100, offset: int = 0, count: bool = True,
) -> Page[TaskView]:  # fmt: skip
    """A page of a dataset's tasks, filtered, in job and task order, and how many match in
    all (-1 when not ``count``). A filter no task could match (an unknown state, a job past
    the dataset's last, a task name its config does not have) is an error, not an empty page.
    """
    with db.read() as conn:
        dataset_id = find_dataset(conn, ref)
        stmt = select(task).where(task.c.dataset_id == dataset_id)
        if _status(TaskStatus, status, "task") is not None:
            stmt = stmt.where(task.c.status == status)
        if job is not None:
            _check_job(conn, dataset_id, ref, job)
            stmt = stmt.where(task.c.job_index == job)
        if name is not None:
            _check_task_name(conn, dataset_id, ref, name)
            stmt = stmt.where(task.c.name == name)
        ordered = stmt.order_by(task.c.job_index, task.c.task_index).limit(limit).offset(offset)
        items = [_task_view(r) for r in conn.execute(ordered)]
        return Page(items, _count(conn, stmt) if count else -1)


def _check_job(conn: Connection, dataset_id: int, ref: int | str, index: int) -> None:
    submitted = conn.execute(
        select(dataset.c.jobs_submitted).where(dataset.c.id == dataset_id)
    ).scalar_one()
    if not 0 <= index < submitted:
        jobs = f"jobs 0 to {submitted - 1}" if submitted else "no jobs"
        raise NotFound(f"dataset {ref} has no job {index} ({jobs})")


def _check_task_name(conn: Connection, dataset_id: int, ref: int | str, name: str) -> None:
    version = conn.execute(
        select(dataset.c.config_version).where(dataset.c.id == dataset_id)
    ).scalar_one()
    names = [t.name for t in config_of(conn, dataset_id, version).tasks]
    if name not in names:
        raise NotFound(f"dataset {ref} has no task {name!r} (tasks: {', '.join(names)})")


def task_detail(db: Database, task_id: int) -> TaskDetail:
    """A task, its attempts (with their statistics) and what it depends on."""
    with db.read() as conn:
        r = conn.execute(select(task).where(task.c.id == task_id)).first()
        if r is None:
            raise NotFound(f"no task {task_id}")
        attempts = conn.execute(
            select(task_attempt)
            .where(task_attempt.c.task_id == task_id)
            .order_by(task_attempt.c.number)
        ).all()
        stats: dict[int, dict[str, float]] = {}
        files: dict[int, list[FileRecord]] = {}
        logs: dict[int, list[str]] = {}
        if attempts:
            ids = [a.id for a in attempts]
            for s in conn.execute(
                select(task_stat.c.attempt_id, task_stat.c.name, task_stat.c.value).where(
                    task_stat.c.attempt_id.in_(ids)
                )
            ):
                stats.setdefault(s.attempt_id, {})[s.name] = s.value
            for f in conn.execute(
                select(file).where(file.c.attempt_id.in_(ids)).order_by(file.c.id)
            ):
                files.setdefault(f.attempt_id, []).append(FileRecord(
                    f.url, f.movement, f.type, f.local, f.size, f.checksum_type, f.checksum
                ))  # fmt: skip
            for n in conn.execute(
                select(task_log.c.attempt_id, task_log.c.name)
                .where(task_log.c.attempt_id.in_(ids))
                .order_by(task_log.c.name)
            ):
                logs.setdefault(n.attempt_id, []).append(n.name)
        parents = parents_of(conn, r.dataset_id, r.task_index)
        names = [
            n.name
            for n in conn.execute(
                select(task.c.name)
                .where(
                    task.c.dataset_id == r.dataset_id,
                    task.c.job_index == r.job_index,
                    task.c.task_index.in_(parents),
                )
                .order_by(task.c.task_index)
            )
        ]
    return TaskDetail(
        task=_task_view(r),
        attempts=[
            AttemptView(
                number=a.number,
                site=a.site,
                host=a.host,
                batch_id=a.batch_id,
                outcome=a.outcome,
                phase=a.phase,
                claimed_at=a.claimed_at,
                started_at=a.started_at,
                ended_at=a.ended_at,
                exit_code=a.exit_code,
                cpu_time=a.cpu_time,
                wall_time=a.wall_time,
                max_memory=a.max_memory,
                error=a.error,
                config_version=a.config_version,
                stats=stats.get(a.id, {}),
                pilot_id=a.pilot_id,
                files=files.get(a.id, []),
                logs=logs.get(a.id, []),
            )
            for a in attempts
        ],
        depends_on=names,
    )


def dataset_config_text(db: Database, ref: int | str, version: int | None = None) -> dict[str, Any]:
    """A version of a dataset's config (the current one by default), as data."""
    with db.read() as conn:
        dataset_id = find_dataset(conn, ref)
        if version is None:
            version = conn.execute(
                select(dataset.c.config_version).where(dataset.c.id == dataset_id)
            ).scalar_one()
        row = conn.execute(
            select(dataset_config.c.config).where(
                dataset_config.c.dataset_id == dataset_id, dataset_config.c.version == version
            )
        ).first()
        if row is None:
            raise NotFound(f"dataset {ref} has no config version {version}")
        data: dict[str, Any] = json.loads(row.config)
        return data


def find_datasets(
    db: Database, *, module: str | None = None, parameter: str | None = None,
    value: str | None = None,
) -> list[int]:  # fmt: skip
    """Datasets whose config (any version) ran ``module`` with ``parameter`` = ``value``.

    A parameter is a module's ``parameters`` entry or a key of its ``args`` mapping; any of
    the three filters may be left out.
    """
    stmt = (
        select(dataset_config.c.dataset_id)
        .select_from(
            config_module.join(config_tray, config_module.c.tray_id == config_tray.c.id).join(
                dataset_config, config_tray.c.config_id == dataset_config.c.id
            )
        )
        .distinct()
    )
    if module is not None:
        stmt = stmt.where(config_module.c.name == module)
    if parameter is not None or value is not None:
        stmt = stmt.join(config_parameter, config_parameter.c.module_id == config_module.c.id)
        if parameter is not None:
            stmt = stmt.where(config_parameter.c.name == parameter)
        if value is not None:
            stmt = stmt.where(config_parameter.c.value_text == value)
    with db.read() as conn:
        return sorted(r.dataset_id for r in conn.execute(stmt))


#: The kinds of event (their ``action``) the services write: what people do to datasets (the
#: control verbs among them), a dataset's or job's change of state (``status``), a job made
#: (``materialize``), the end of a task's attempt that sent it back or failed it (its outcome),
#: and a file the collector refused to delete. Kinds recorded by other releases count too.
EVENT_KINDS: frozenset[str] = frozenset(
    {"submit", "edit-config", "set-jobs", "set-priority", "truncate", "status", "materialize",
     "refused_delete", "login", "failed-login", "add-user", "disable-user", "enable-user",
     "set-password", "add-group", "set-member", "remove-member", "create-token",
     "revoke-token", *ACTIONS}
    | {o.value for o in AttemptOutcome if o not in (AttemptOutcome.OPEN, AttemptOutcome.COMPLETE)}
)  # fmt: skip


def _event_view(r: Any) -> EventView:
    return EventView(
        id=r.id,
        time=r.time,
        actor=r.actor,
        dataset_id=r.dataset_id,
        object_type=r.object_type,
        object_id=r.object_id,
        action=r.action,
        old_status=r.old_status,
        new_status=r.new_status,
        count=r.count,
        reason=r.reason,
    )


def _check_kind(conn: Connection, kind: str) -> None:
    """Refuse a kind of event that is neither written here nor recorded, naming them all."""
    if kind in EVENT_KINDS:
        return
    if conn.execute(select(event.c.id).where(event.c.action == kind).limit(1)).first():
        return
    recorded = conn.execute(select(event.c.action).distinct()).scalars()
    names = ", ".join(sorted(EVENT_KINDS.union(recorded)))
    raise BadRequest(f"no kind of event {kind!r}; kinds: {names}")


def events_page(
    db: Database, *, dataset_ref: int | str | None = None, kind: str | None = None,
    since: float | None = None, limit: int = 100, offset: int = 0, count: bool = True,
    where: ColumnElement[bool] | None = None,
) -> Page[EventView]:  # fmt: skip
    """A page of the audit trail, newest first, and how many entries match in all (-1 when
    not ``count``): of one dataset, of one kind (the event's action), from ``since`` (a Unix
    time) on; with ``where`` (a condition on ``dataset`` rows), only events of the datasets
    that match it (not those of no dataset: logins, people). An unknown dataset is
    ``NotFound``, an unknown kind ``BadRequest``."""
    with db.read() as conn:
        stmt = select(event)
        if where is not None:
            stmt = stmt.where(event.c.dataset_id.in_(select(dataset.c.id).where(where)))
        if dataset_ref is not None:
            stmt = stmt.where(event.c.dataset_id == find_dataset(conn, dataset_ref))
        if kind is not None:
            _check_kind(conn, kind)
            stmt = stmt.where(event.c.action == kind)
        if since is not None:
            if not math.isfinite(since):
                raise BadRequest(f"since is a Unix time, not {since}")
            stmt = stmt.where(event.c.time >= since)
        rows = conn.execute(stmt.order_by(event.c.id.desc()).limit(limit).offset(offset))
        items = [_event_view(r) for r in rows]
        return Page(items, _count(conn, stmt) if count else -1)


def events(db: Database, ref: int | str, *, limit: int = 50) -> list[EventView]:
    """A dataset's most recent audit events."""
    return events_page(db, dataset_ref=ref, limit=limit, count=False).items


def task_logs(db: Database, task_id: int, *, attempt: int | None = None) -> list[LogView]:
    """A task's logs, newest attempt first."""
    with db.read() as conn:
        if conn.execute(select(task.c.id).where(task.c.id == task_id)).first() is None:
            raise NotFound(f"no task {task_id}")
        stmt = (
            select(task_attempt.c.number, task_log.c.name, task_log.c.text, task_log.c.size,
                   task_log.c.created_at)
            .join(task_attempt, task_attempt.c.id == task_log.c.attempt_id)
            .where(task_log.c.task_id == task_id)
            .order_by(task_attempt.c.number.desc(), task_log.c.name)
        )  # fmt: skip
        if attempt is not None:
            stmt = stmt.where(task_attempt.c.number == attempt)
        return [LogView(r.number, r.name, r.text, r.size, r.created_at) for r in conn.execute(stmt)]


@dataclass(frozen=True)
class QueueDepth:
    """How many tasks of a dataset are in one state."""

    dataset_id: int
    status: str
    count: int


def queue_depths(db: Database) -> list[QueueDepth]:
    """Task counts per dataset and state, for datasets still at work (for metrics)."""
    with db.read() as conn:
        live = select(dataset.c.id).where(dataset.c.status != "complete")
        rows = conn.execute(
            select(task.c.dataset_id, task.c.status, func.count().label("n"))
            .where(task.c.dataset_id.in_(live))
            .group_by(task.c.dataset_id, task.c.status)
        )
        return [QueueDepth(r.dataset_id, r.status, int(r.n)) for r in rows]


@dataclass(frozen=True)
class OutputView:
    """A permanent output file of a dataset, as its task recorded it."""

    url: str
    size: int | None
    checksum: str | None


def permanent_outputs(db: Database, ref: int | str) -> list[OutputView]:
    """The permanent output files the dataset's tasks recorded."""
    with db.read() as conn:
        dataset_id = find_dataset(conn, ref)
        rows = conn.execute(
            select(file.c.url, file.c.size, file.c.checksum)
            .where(
                file.c.dataset_id == dataset_id,
                file.c.type == "permanent",
                file.c.movement == "output",
            )
            .order_by(file.c.id)
        ).all()
    return [OutputView(r.url, r.size, r.checksum) for r in rows]


def config_versions(db: Database, ref: int | str) -> list[ConfigVersion]:
    """Every version of a dataset's config, oldest first: when, who and why."""
    with db.read() as conn:
        dataset_id = find_dataset(conn, ref)
        current = conn.execute(
            select(dataset.c.config_version).where(dataset.c.id == dataset_id)
        ).scalar_one()
        rows = conn.execute(
            select(dataset_config.c.version, dataset_config.c.created_at,
                   dataset_config.c.created_by, dataset_config.c.comment)
            .where(dataset_config.c.dataset_id == dataset_id)
            .order_by(dataset_config.c.version)
        ).all()  # fmt: skip
    return [
        ConfigVersion(r.version, r.created_at, r.created_by, r.comment, r.version == current)
        for r in rows
    ]
