"""Routes for datasets, their jobs, tasks, statistics and control actions."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Response

from frazil.model.validate import JobsChecked
from frazil.server.deps import Reader, State, User, actor
from frazil.server.schemas import ConfigBody, JobsBody, PriorityBody, ScopeBody, SubmitBody
from frazil.services import blobs, control, delete, permissions, queries, stats, submit
from frazil.services.permissions import Right
from frazil.services.validation import ConfigText
from frazil.wire import (
    TOTAL_HEADER,
    Checked,
    ConfigEdited,
    ConfigVersion,
    DatasetDeleted,
    DatasetStatusView,
    DatasetView,
    EventView,
    JobsSet,
    JobView,
    Submitted,
    TaskView,
)

router = APIRouter(prefix="/datasets", tags=["datasets"])

SUBMITTED = "<submitted config>"


def config_text(value: dict[str, Any] | str) -> ConfigText:
    """A submitted config as text: an object as JSON, text as it came (YAML or JSON)."""
    if isinstance(value, dict):
        return ConfigText(json.dumps(value), SUBMITTED, "json")
    return ConfigText(value, SUBMITTED)


def checked(jobs: JobsChecked) -> Checked:
    """Which jobs a config's check looked at, for an answer."""
    return Checked(jobs.checked, jobs.total, jobs.sampled, jobs.describe())


@router.post("", status_code=201)
def submit_dataset(body: SubmitBody, app: State, who: User) -> Submitted:
    """Submit a dataset; returns its id and which jobs its config was checked for.
    ``uploads`` names files uploaded first (``PUT /blobs/{sha256}``) by the relative paths
    the config uses for them."""
    uploads = blobs.check_uploads(app.blobs, body.uploads, app.blob_limits)
    done = submit.submit_dataset(
        app.db, config_text(body.config), jobs=body.jobs, now=app.now(), actor=actor(who),
        owner=who.name, group=body.group, private=body.private, alias=body.alias,
        description=body.description, priority=body.priority, seed=body.seed,
        limits=app.validation, quotas=app.quota, uploads=uploads,
    )  # fmt: skip
    return Submitted(done.id, checked(done.jobs))


@router.get("")
def list_datasets(app: State, who: Reader, status: str | None = None) -> list[DatasetView]:
    """Every dataset the caller may read, newest first."""
    return queries.list_datasets(app.db, status=status, where=permissions.visible(who))


@router.get("/{ref}")
def dataset_status(ref: str, app: State, who: Reader, breakdown: bool = False) -> DatasetStatusView:
    """A dataset with its task counts per task name and state (``breakdown``: also per site
    and state, and per task name and phase of the tasks being processed)."""
    permissions.guard(app.db, who, ref, Right.READ)
    return queries.dataset_status(app.db, ref, breakdown=breakdown)


@router.get("/{ref}/config")
def dataset_config(ref: str, app: State, who: Reader, version: int | None = None) -> dict[str, Any]:
    """A version of the dataset's config (the current one by default)."""
    permissions.guard(app.db, who, ref, Right.READ)
    return queries.dataset_config_text(app.db, ref, version)


@router.put("/{ref}/config")
def edit_config(ref: str, body: ConfigBody, app: State, who: User) -> ConfigEdited:
    """Store a new version of the config; returns its number."""
    permissions.guard(app.db, who, ref, Right.CONTROL)
    edited = submit.edit_config(
        app.db, ref, config_text(body.config), now=app.now(), actor=actor(who),
        comment=body.comment, limits=app.validation, base=body.base,
    )  # fmt: skip
    return ConfigEdited(edited.version, checked(edited.jobs))


@router.post("/{ref}/actions/{action}")
def act(ref: str, action: str, body: ScopeBody, app: State, who: User) -> dict[str, int]:
    """suspend, resume, reset or hard-reset tasks of the dataset (all, a job, a task)."""
    permissions.guard(app.db, who, ref, Right.CONTROL)
    scope = control.Scope(ref, job=body.job, task=body.task, task_id=body.task_id)
    count = control.act(
        app.db, action, scope, now=app.now(), actor=actor(who), reason=body.reason
    )  # fmt: skip
    return {"count": count}


@router.put("/{ref}/priority")
def set_priority(ref: str, body: PriorityBody, app: State, who: User) -> dict[str, float]:
    """Change the dataset's weight in the fair share."""
    permissions.guard(app.db, who, ref, Right.CONTROL)
    control.set_priority(app.db, ref, body.priority, now=app.now(), actor=actor(who))
    return {"priority": body.priority}


@router.put("/{ref}/jobs")
def set_jobs(ref: str, body: JobsBody, app: State, who: User) -> JobsSet:
    """Raise the number of jobs (the new ones are checked first)."""
    permissions.guard(app.db, who, ref, Right.CONTROL)
    jobs = submit.set_jobs(
        app.db, ref, body.jobs, now=app.now(), actor=actor(who), limits=app.validation,
        quotas=app.quota,
    )  # fmt: skip
    return JobsSet(body.jobs, None if jobs is None else checked(jobs))


@router.post("/{ref}/truncate")
def truncate(ref: str, app: State, who: User) -> dict[str, bool]:
    """Make no more jobs: the dataset completes when the existing ones do."""
    permissions.guard(app.db, who, ref, Right.CONTROL)
    submit.truncate(app.db, ref, now=app.now(), actor=actor(who))
    return {"truncated": True}


@router.get("/{ref}/jobs")
def list_jobs(
    ref: str, app: State, who: Reader, response: Response, status: str | None = None,
    limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0),
) -> list[JobView]:  # fmt: skip
    """The dataset's jobs in index order (how many in all: the ``Frazil-Total`` header)."""
    permissions.guard(app.db, who, ref, Right.READ)
    page = queries.jobs_page(app.db, ref, status=status, limit=limit, offset=offset)
    response.headers[TOTAL_HEADER] = str(page.total)
    return page.items


@router.get("/{ref}/tasks")
def list_tasks(
    ref: str, app: State, who: Reader, response: Response, status: str | None = None,
    job: int | None = None, name: str | None = None,
    limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0),
) -> list[TaskView]:  # fmt: skip
    """The dataset's tasks, filtered (how many match in all: the ``Frazil-Total`` header).
    A filter no task could match (an unknown state, job or task name) is an error."""
    permissions.guard(app.db, who, ref, Right.READ)
    page = queries.tasks_page(
        app.db, ref, status=status, job=job, name=name, limit=limit, offset=offset
    )
    response.headers[TOTAL_HEADER] = str(page.total)
    return page.items


@router.get("/{ref}/stats")
def dataset_stats(
    ref: str, app: State, who: Reader, task: str | None = None,
    limit: int = Query(stats.PAGE, ge=1, le=stats.MAX_PAGE), after: str | None = None,
) -> list[Any]:  # fmt: skip
    """A page of statistics: for each of the next ``limit`` names after ``after`` (the last
    name of the previous page), the figures overall (``*``) and per task name."""
    permissions.guard(app.db, who, ref, Right.READ)
    return list(stats.dataset_stats(app.db, ref, task_name=task, limit=limit, after=after))


@router.get("/{ref}/events")
def dataset_events(
    ref: str, app: State, who: Reader, limit: int = Query(50, ge=1, le=1000)
) -> list[EventView]:
    """The dataset's most recent audit events (``GET /events`` filters and pages them)."""
    permissions.guard(app.db, who, ref, Right.READ)
    return queries.events(app.db, ref, limit=limit)


@router.get("/{ref}/config/versions")
def config_versions(ref: str, app: State, who: Reader) -> list[ConfigVersion]:
    """Every version of the dataset's config, oldest first: when, who and why."""
    permissions.guard(app.db, who, ref, Right.READ)
    return queries.config_versions(app.db, ref)


@router.delete("/{ref}")
def delete_dataset(
    ref: str, app: State, who: User, reason: str = Query("", max_length=2000)
) -> DatasetDeleted:
    """Delete the dataset and every row of its own (its owner, a member of its group who
    may write, or an administrator); the audit trail keeps the deletion."""
    permissions.guard(app.db, who, ref, Right.CONTROL)
    return delete.delete_dataset(
        app.db, ref, caller=who.name, admin=True, now=app.now(),  # the guard has decided
        actor=actor(who), reason=reason,
    )  # fmt: skip
