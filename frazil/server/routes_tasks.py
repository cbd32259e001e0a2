"""Routes for single tasks: details, logs and control."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, Response

from frazil.server.deps import Reader, State, User, actor
from frazil.server.schemas import ScopeBody
from frazil.services import control, permissions, queries
from frazil.services import task_logs as logs
from frazil.services.permissions import Right
from frazil.wire import ATTEMPT_HEADER, LogView, TaskDetail

router = APIRouter(prefix="/tasks", tags=["tasks"])

TEXT = "text/plain; charset=utf-8"
_RANGE = re.compile(r"bytes=(\d{1,18})-(\d{1,18})?")


@router.get("/{task_id}")
def task_detail(task_id: int, app: State, who: Reader) -> TaskDetail:
    """A task with its attempts (errors, resources, statistics)."""
    permissions.guard_task(app.db, who, task_id, Right.READ)
    return queries.task_detail(app.db, task_id)


@router.get("/{task_id}/logs")
def task_logs(task_id: int, app: State, who: Reader, attempt: int | None = None) -> list[LogView]:
    """The kept tails of the task's logs, newest attempt first."""
    permissions.guard_task(app.db, who, task_id, Right.READ)
    return queries.task_logs(app.db, task_id, attempt=attempt)


@router.get("/{task_id}/logs/{name}", response_class=Response)
def task_log(
    task_id: int, name: str, app: State, who: Reader, attempt: int | None = None,
    range_: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:  # fmt: skip
    """One log of the task's attempt ``attempt`` (default: its newest), as text: whole, or
    with ``Range: bytes=N-`` (or ``N-M``) the bytes from N on (206, ``Content-Range``; 416
    from the log's end on). ``Frazil-Attempt`` names the attempt. An attempt that has sent
    nothing of this log yet has an empty one."""
    permissions.guard_task(app.db, who, task_id, Right.READ)
    wanted = _byte_range(range_)
    start, end = wanted if wanted else (0, None)
    part = logs.read_log(app.db, app.logs, task_id, name, attempt=attempt, start=start,
                              end=end)  # fmt: skip
    headers = {ATTEMPT_HEADER: str(part.attempt), "Accept-Ranges": "bytes"}
    if wanted is None:
        return Response(part.data, media_type=TEXT, headers=headers)
    if start >= part.total:
        headers["Content-Range"] = f"bytes */{part.total}"
        return Response(b"", status_code=416, media_type=TEXT, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{part.end - 1}/{part.total}"
    return Response(part.data, status_code=206, media_type=TEXT, headers=headers)


def _byte_range(value: str | None) -> tuple[int, int | None] | None:
    """``bytes=N-`` or ``bytes=N-M`` as (start, end past the last byte); others are ignored
    (the whole log is served, as HTTP allows)."""
    if value is None:
        return None
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        return None
    start = int(match[1])
    last = int(match[2]) if match[2] else None
    if last is not None and last < start:
        return None
    return start, None if last is None else last + 1


@router.post("/{task_id}/actions/{action}")
def act(task_id: int, action: str, body: ScopeBody, app: State, who: User) -> dict[str, int]:
    """suspend, resume, reset or hard-reset one task (hard reset also resets what follows it)."""
    control.check_action(action)  # before the task is looked up
    dataset_id = permissions.guard_task(app.db, who, task_id, Right.CONTROL)
    scope = control.Scope(dataset_id, task_id=task_id)
    count = control.act(
        app.db, action, scope, now=app.now(), actor=actor(who), reason=body.reason
    )  # fmt: skip
    return {"count": count}
