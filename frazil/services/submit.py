"""Submitting datasets and editing their configs.

``submit`` checks the config within its budget (``validation``: in a child process, outside
any transaction), then in one transaction creates the dataset, its first config version, the
searchable rows of that version, the DAG that every job shares, and the first chunk of jobs.
A rejected submission writes nothing. The rest of the jobs are made by ``materialize_step``
in the background. A config edit is checked the same way before its transaction, which
writes only if the dataset did not change in between.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from frazil.config import QuotaSettings, ValidationSettings
from frazil.errors import ConstraintViolated, Problem, Rejected
from frazil.model.expressions import to_text
from frazil.model.limits import PRIORITY, SEED
from frazil.model.policy import policy_from_options
from frazil.model.spec import DatasetConfig
from frazil.model.states import DatasetStatus
from frazil.model.validate import JobsChecked
from frazil.services import quota, validation
from frazil.services.datasets import find_dataset
from frazil.services.materialize import CHUNK_JOBS, materialize_range
from frazil.services.transitions import record_event, refresh_dataset
from frazil.services.validation import ConfigText
from frazil.store.db import Database
from frazil.store.schema import (
    config_module,
    config_parameter,
    config_tray,
    dataset,
    dataset_config,
    software_env,
    task_dependency,
)

ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,99}\Z")  # \Z: "$" lets a final "\n" in
MAX_JOBS = 100_000_000
DEFAULT_VALIDATION = ValidationSettings()
DEFAULT_QUOTA = QuotaSettings()


def config_json(config: DatasetConfig) -> str:
    """The stored form of a config: the keys the author wrote, as compact JSON."""
    return config.model_dump_json(by_alias=True, exclude_unset=True)


@dataclass(frozen=True)
class Submitted:
    """A new dataset, and what the check of its config looked at."""

    id: int
    jobs: JobsChecked
    warnings: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Edited:
    """A new config version, and what its check looked at."""

    version: int
    jobs: JobsChecked


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _env_id(conn: Connection, name: str, version: str) -> int:
    row = conn.execute(
        select(software_env.c.id).where(
            software_env.c.name == name, software_env.c.version == version
        )
    ).first()
    if row is not None:
        return int(row.id)
    return _new_id(conn.execute(insert(software_env).values(name=name, version=version)))


def _param_rows(config_id: int, values: dict[str, Any], **where: Any) -> list[dict[str, Any]]:
    rows = []
    for name, value in values.items():
        rows.append(
            {
                "config_id": config_id,
                "tray_id": where.get("tray_id"),
                "module_id": where.get("module_id"),
                "task_name": where.get("task_name"),
                "scope": where["scope"],
                "kind": where.get("kind", "parameter"),
                "name": str(name)[:255],
                "value_json": json.dumps(value),
                "value_text": to_text(value)[:255],
            }
        )
    return rows


def index_config(conn: Connection, config_id: int, config: DatasetConfig) -> None:
    """Store the searchable parts of a config version as rows (a few statements, whatever
    the number of tasks: trays, then modules, then parameters, each inserted at once)."""
    params = _param_rows(config_id, config.steering.parameters, scope="steering")
    trays = [
        (t, task, r, tray)
        for t, task in enumerate(config.tasks)
        for r, tray in enumerate(task.trays)
    ]
    tray_ids = _insert_ids(conn, config_tray, [
        {
            "config_id": config_id, "task_index": t, "task_name": task.name, "tray_index": r,
            "name": tray.name,
            "iterations": str(tray.iterations)[:255],  # an expression may be longer
            "env_id": _env_id(conn, tray.env.name, tray.env.version) if tray.env else None,
        }
        for t, task, r, tray in trays
    ])  # fmt: skip
    modules = [
        (task, tray_id, m, module)
        for (_, task, _, tray), tray_id in zip(trays, tray_ids, strict=True)
        for m, module in enumerate(tray.modules)
    ]
    module_ids = _insert_ids(conn, config_module, [
        {
            "tray_id": tray_id, "module_index": m, "name": module.name, "src": module.src,
            "class_name": module.class_, "url": module.url,
        }
        for _, tray_id, m, module in modules
    ])  # fmt: skip
    for task in config.tasks:
        params += _param_rows(config_id, task.parameters, scope="task", task_name=task.name)
    for (_, task, _, tray), tray_id in zip(trays, tray_ids, strict=True):
        params += _param_rows(
            config_id, tray.parameters, scope="tray", tray_id=tray_id, task_name=task.name
        )
    for (task, tray_id, _, module), module_id in zip(modules, module_ids, strict=True):
        where = {"scope": "module", "tray_id": tray_id, "module_id": module_id}
        params += _param_rows(config_id, module.parameters, task_name=task.name, **where)
        if isinstance(module.args, dict):
            params += _param_rows(config_id, module.args, task_name=task.name, kind="arg", **where)
    if params:
        conn.execute(insert(config_parameter), params)


def _insert_ids(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table``; their new ids, in the order of ``rows``."""
    if not rows:
        return []
    if conn.dialect.insert_executemany_returning_sort_by_parameter_order:
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in conn.execute(stmt, rows).scalars()]
    return [_new_id(conn.execute(insert(table), row)) for row in rows]


def _add_version(
    conn: Connection, dataset_id: int, version: int, config: DatasetConfig, now: float,
    comment: str, actor: str, uploads: str | None = None,
) -> None:  # fmt: skip
    text = config_json(config)
    config_id = _new_id(
        conn.execute(
            insert(dataset_config).values(
                dataset_id=dataset_id,
                version=version,
                config=text,
                hash=hashlib.sha256(text.encode()).hexdigest(),
                comment=comment,
                created_at=now,
                created_by=actor,
                uploads=uploads,
            )
        )
    )
    index_config(conn, config_id, config)


def submit(db: Database, config: DatasetConfig | ConfigText, **options: Any) -> int:
    """``submit_dataset``, for callers that need only the new dataset's id."""
    return submit_dataset(db, config, **options).id


def submit_dataset(
    db: Database,
    config: DatasetConfig | ConfigText,
    *,
    jobs: int,
    now: float,
    actor: str = "user",
    owner: str = "",
    group: str = "",
    private: bool = False,
    alias: str | None = None,
    description: str | None = None,
    priority: float = 1.0,
    seed: int | None = None,
    debug: bool | None = None,
    always_active: bool = False,
    sync_jobs: int = CHUNK_JOBS,
    limits: ValidationSettings = DEFAULT_VALIDATION,
    quotas: QuotaSettings = DEFAULT_QUOTA,
    uploads: Mapping[str, str] | None = None,
) -> Submitted:
    """Create a dataset with ``jobs`` jobs. Nothing is written on error.

    Every job is checked if the time for checking jobs allows, else the first, the last and
    a random sample (``Submitted.jobs`` says which). ``uploads`` ({relative path: sha256},
    checked by ``blobs.check_uploads``) is kept with the config version."""
    if not 0 <= jobs <= MAX_JOBS:
        raise Rejected(f"jobs must be between 0 and {MAX_JOBS}, got {jobs}")
    if alias is not None and not ALIAS.match(alias):
        raise Rejected(
            f"an alias is letters, digits, '_', '.' or '-', starting with a letter; got {alias!r}"
        )
    for what, value, bounds in (("priority", priority, PRIORITY), ("seed", seed, SEED)):
        problem = None if value is None else bounds.problem(value)
        if problem is not None:
            raise Rejected(f"{what} {problem}")
    with db.read() as conn:  # before the config's check spends time: the jobs alone
        quota.check(conn, owner, quotas, jobs=jobs, tasks_per_job=0, adding=jobs)
    checked = validation.check(config, limits, jobs=range(jobs))
    config = checked.config
    policy, _ = policy_from_options(config.options)
    tasks = len(config.tasks)

    def run(conn: Connection) -> int:
        quota.check(conn, owner, quotas, jobs=jobs, tasks_per_job=tasks, adding=jobs)
        dataset_id = _new_id(
            conn.execute(
                insert(dataset).values(
                    alias=alias,
                    description=config.description if description is None else description,
                    owner=owner,
                    group_name=group,
                    private=private,
                    status=DatasetStatus.PROCESSING.value,
                    priority=priority,
                    debug=policy.debug if debug is None else debug,
                    truncated=False,
                    always_active=always_active,
                    seed=0,
                    jobs_submitted=jobs,
                    jobs_materialized=0,
                    jobs_complete=0,
                    jobs_failed=0,
                    tasks_per_job=len(config.tasks),
                    config_version=1,
                    max_failures=policy.max_failures,
                    queued_timeout=policy.queued_timeout,
                    processing_timeout=policy.processing_timeout,
                    heartbeat_timeout=policy.heartbeat_timeout,
                    created_at=now,
                    updated_at=now,
                )
            )
        )
        conn.execute(
            update(dataset)
            .where(dataset.c.id == dataset_id)
            .values(seed=dataset_id if seed is None else seed)
        )
        _add_version(conn, dataset_id, 1, config, now, "submitted", actor, _uploads_json(uploads))
        names = [t.name for t in config.tasks]
        deps = [
            {"dataset_id": dataset_id, "task_index": i, "depends_on": j}
            for i, t in enumerate(config.tasks)
            for j in sorted({d if isinstance(d, int) else names.index(d) for d in t.depends})
        ]
        if deps:
            conn.execute(insert(task_dependency), deps)
        record_event(
            conn, now, actor, "dataset", str(dataset_id), "submit",
            dataset_id=dataset_id, new=DatasetStatus.PROCESSING.value, count=jobs,
            reason=f"{jobs} jobs of {len(names)} tasks",
        )  # fmt: skip
        materialize_range(conn, dataset_id, min(jobs, sync_jobs), now, actor)
        refresh_dataset(conn, dataset_id, now, actor)
        return dataset_id

    try:
        return Submitted(db.transaction(run), checked.jobs, checked.warnings)
    except ConstraintViolated as exc:
        if alias is not None and "alias" in exc.reason.lower():
            raise Rejected(f"the alias {alias!r} is taken") from exc
        raise


def _uploads_json(uploads: Mapping[str, str] | None) -> str | None:
    return json.dumps(dict(sorted(uploads.items()))) if uploads else None


def _current(conn: Connection, dataset_id: int) -> Any:
    """What a config check of a dataset depends on (and its transaction compares)."""
    return conn.execute(
        select(
            dataset.c.config_version, dataset.c.jobs_submitted, dataset.c.truncated,
            dataset.c.owner, dataset.c.tasks_per_job, dataset_config.c.config,
            dataset_config.c.uploads,
        )
        .join(
            dataset_config,
            (dataset_config.c.dataset_id == dataset.c.id)
            & (dataset_config.c.version == dataset.c.config_version),
        )
        .where(dataset.c.id == dataset_id)
    ).one()  # fmt: skip


def _unchanged(conn: Connection, dataset_id: int, seen: Any) -> None:
    """Refuse to write if the dataset changed while its config was being checked."""
    now = conn.execute(
        select(dataset.c.config_version, dataset.c.jobs_submitted).where(dataset.c.id == dataset_id)
    ).one()
    if (now.config_version, now.jobs_submitted) != (seen.config_version, seen.jobs_submitted):
        raise Rejected(
            "the dataset changed while its config was being checked (another edit or "
            "set-jobs); nothing was written: try again"
        )


def edit_config(
    db: Database, ref: int | str, config: DatasetConfig | ConfigText, *, now: float,
    actor: str = "user", comment: str = "", limits: ValidationSettings = DEFAULT_VALIDATION,
    base: int | None = None,
) -> Edited:  # fmt: skip
    """Store a new version of a dataset's config.

    The tasks and their dependencies must stay the same (the DAG is shared by jobs that
    already exist); everything else may change, and the next attempts run the new version.
    The new version is checked for the dataset's jobs before the write, outside it.
    ``base``: the version the edit started from; when another version was stored since,
    the edit is refused (it would undo that one unseen).
    """
    with db.read() as conn:
        dataset_id = find_dataset(conn, ref)
        seen = _current(conn, dataset_id)
    if base is not None and base != seen.config_version:
        raise Rejected(
            f"dataset {ref} is at config version {seen.config_version}, not {base}: another "
            "version was stored since this edit began; nothing was written"
        )
    jobs = max(int(seen.jobs_submitted), 1)
    checked = validation.check(config, limits, jobs=range(jobs))
    config = checked.config
    before = DatasetConfig.model_validate_json(seen.config)
    shape = [(t.name, sorted(map(str, t.depends))) for t in before.tasks]
    if shape != [(t.name, sorted(map(str, t.depends))) for t in config.tasks]:
        raise Rejected("a new config version must keep the task names and their dependencies")

    def run(conn: Connection) -> int:
        _unchanged(conn, dataset_id, seen)
        version = int(seen.config_version) + 1
        # the files uploaded with the first version stay pinned for the paths it named
        _add_version(conn, dataset_id, version, config, now, comment, actor, seen.uploads)
        conn.execute(
            update(dataset)
            .where(dataset.c.id == dataset_id)
            .values(config_version=version, updated_at=now)
        )
        record_event(
            conn, now, actor, "dataset", str(dataset_id), "edit-config",
            dataset_id=dataset_id, reason=f"version {version}: {comment}",
        )  # fmt: skip
        return version

    return Edited(db.transaction(run), checked.jobs)


def set_jobs(
    db: Database, ref: int | str, jobs: int, *, now: float, actor: str = "user",
    limits: ValidationSettings = DEFAULT_VALIDATION, quotas: QuotaSettings = DEFAULT_QUOTA,
) -> JobsChecked | None:  # fmt: skip
    """Raise ``jobs_submitted``; the materializer makes the new jobs.

    The new jobs are checked against the current config first (every one if the time for
    checking jobs allows, else the first, the last and a random sample); what was checked is
    returned (None when no job is added)."""
    with db.read() as conn:
        dataset_id = find_dataset(conn, ref)
        seen = _current(conn, dataset_id)
        _can_set_jobs(conn, seen, jobs, quotas)
    checked = None
    if jobs > seen.jobs_submitted:
        text = ConfigText(seen.config, f"dataset {dataset_id} (version {seen.config_version})")
        checked = validation.check(
            text, limits, jobs=range(seen.jobs_submitted, jobs), jobs_submitted=jobs
        ).jobs

    def run(conn: Connection) -> None:
        _unchanged(conn, dataset_id, seen)
        d = _current(conn, dataset_id)
        _can_set_jobs(conn, d, jobs, quotas)
        conn.execute(
            update(dataset)
            .where(dataset.c.id == dataset_id)
            .values(jobs_submitted=jobs, updated_at=now)
        )
        record_event(
            conn, now, actor, "dataset", str(dataset_id), "set-jobs",
            dataset_id=dataset_id, count=jobs - d.jobs_submitted,
            reason=f"{d.jobs_submitted} -> {jobs} jobs",
        )  # fmt: skip
        refresh_dataset(conn, dataset_id, now, actor)

    db.transaction(run)
    return checked


def _can_set_jobs(conn: Connection, d: Any, jobs: int, quotas: QuotaSettings) -> None:
    if jobs < d.jobs_submitted:
        raise Rejected(f"jobs can only grow ({d.jobs_submitted} -> {jobs}); truncate instead")
    if d.truncated:
        raise Rejected("the dataset is truncated: it takes no more jobs")
    if jobs > MAX_JOBS:
        raise Rejected(f"at most {MAX_JOBS} jobs")
    adding = jobs - int(d.jobs_submitted)
    quota.check(conn, d.owner, quotas, jobs=jobs, tasks_per_job=d.tasks_per_job, adding=adding)


def truncate(db: Database, ref: int | str, *, now: float, actor: str = "user") -> None:
    """Stop making jobs: the dataset completes when the jobs that exist are done."""

    def run(conn: Connection) -> None:
        dataset_id = find_dataset(conn, ref)
        conn.execute(
            update(dataset)
            .where(dataset.c.id == dataset_id)
            .values(truncated=True, jobs_submitted=dataset.c.jobs_materialized, updated_at=now)
        )
        record_event(
            conn, now, actor, "dataset", str(dataset_id), "truncate", dataset_id=dataset_id
        )
        refresh_dataset(conn, dataset_id, now, actor)

    db.transaction(run)
