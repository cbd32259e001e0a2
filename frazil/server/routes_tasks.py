"""Routes for single tasks: details, logs and control."""

from __future__ import annotations

from fastapi import APIRouter

from frazil.server.deps import Reader, State, User, actor
from frazil.server.schemas import ScopeBody
from frazil.services import control, queries
from frazil.wire import LogView, TaskDetail

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("/{task_id}")
def task_detail(task_id: int, app: State, _: Reader) -> TaskDetail:
    """A task with its attempts (errors, resources, statistics)."""
    return queries.task_detail(app.db, task_id)


@router.get("/{task_id}/logs")
def task_logs(task_id: int, app: State, _: Reader, attempt: int | None = None) -> list[LogView]:
    """The kept tails of the task's logs, newest attempt first."""
    return queries.task_logs(app.db, task_id, attempt=attempt)


@router.post("/{task_id}/actions/{action}")
def act(task_id: int, action: str, body: ScopeBody, app: State, who: User) -> dict[str, int]:
    """suspend, resume, reset or hard-reset one task (hard reset also resets what follows it)."""
    control.check_action(action)  # before the task is looked up
    detail = queries.task_detail(app.db, task_id)
    scope = control.Scope(detail.task.dataset_id, task_id=task_id)
    count = control.act(
        app.db, action, scope, now=app.now(), actor=actor(who), reason=body.reason
    )  # fmt: skip
    return {"count": count}
