"""The pilot's side of one attempt: every call carries the attempt's passkey.

``router`` serves one attempt (``/pilot/tasks/{id}/attempts/{n}/...``: spec, start,
heartbeat, log, finish, fail); ``pilot`` serves the calls not bound to one attempt: a reserved
task's claim (batch-side DAGs) and batched heartbeats. Multi-task pilots speak through
``routes_pilots`` instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from frazil.errors import AuthError, Rejected
from frazil.model.states import TaskPhase
from frazil.server.deps import Passkey, Reservation, State
from frazil.server.schemas import (
    BeatsBody,
    HeartbeatBody,
    LogBody,
    StartBody,
)
from frazil.services import attempts, claim, task_logs
from frazil.wire import AttemptKey, Failure, Finish, LogChunk, encode

router = APIRouter(prefix="/pilot/tasks/{task_id}/attempts/{attempt}", tags=["pilot"])
pilot = APIRouter(prefix="/pilot", tags=["pilot"])


@pilot.post("/tasks/{task_id}/claim")
def claim_reserved(task_id: int, key: Reservation, app: State) -> dict[str, Any]:
    """A reserved task's pilot claims it (batch-side DAGs): its attempt and passkey."""
    c = claim.claim_reserved(app.db, task_id, key, app.now())
    answer: dict[str, Any] = encode(AttemptKey(c.task_id, c.attempt, c.passkey))
    return answer


@pilot.post("/heartbeats")
def heartbeats(body: BeatsBody, key: Passkey, app: State) -> dict[str, list[str]]:
    """Many heartbeats in one request: ``ok``, ``stale`` or ``denied`` for each.

    The request carries one of its beats' passkeys in the Authorization header; every beat
    is checked against its own passkey.
    """
    if not any(b.passkey == key for b in body.beats):
        raise AuthError("the Authorization passkey must be one of the beats' passkeys")
    beats = [
        attempts.Beat(b.task_id, b.attempt, b.passkey, TaskPhase(b.phase) if b.phase else None)
        for b in body.beats
    ]
    return {"results": attempts.heartbeats(app.db, beats, now=app.now())}


@router.get("/spec")
def spec(task_id: int, attempt: int, key: Passkey, app: State) -> dict[str, Any]:
    """The resolved task: trays, modules with their argv, data, requirements (a spec that
    cannot be resolved fails the attempt and answers 422 with the located error)."""
    return attempts.spec(app.db, task_id, attempt, key, now=app.now())


@router.post("/start")
def start(task_id: int, attempt: int, body: StartBody, key: Passkey, app: State) -> dict[str, bool]:
    """The pilot started on a worker node: the task is processing."""
    attempts.start(app.db, task_id, attempt, key, now=app.now(), host=body.host)
    return {"ok": True}


@router.post("/heartbeat")
def heartbeat(
    task_id: int, attempt: int, body: HeartbeatBody, key: Passkey, app: State
) -> dict[str, Any]:
    """The pilot is alive (and maybe moved on to another phase); the chunks of its logs that
    came along are appended, and ``logs`` says how much the server holds of each."""
    if not body.logs:
        attempts.heartbeat(app.db, task_id, attempt, key, now=app.now(), phase=body.phase)
        return {"ok": True, "logs": []}
    acks = task_logs.heartbeat(
        app.db, app.logs, task_id, attempt, key, now=app.now(), phase=body.phase,
        chunks=body.logs,
    )  # fmt: skip
    return {"ok": True, "logs": encode(acks)}


@router.post("/finish")
def finish(task_id: int, attempt: int, body: Finish, key: Passkey, app: State) -> dict[str, bool]:
    """The attempt succeeded; its statistics and files are recorded."""
    attempts.finish(app.db, task_id, attempt, key, body, now=app.now(), caps=app.report_caps)
    if app.metrics is not None:
        app.metrics.completed()
    return {"ok": True}


@router.post("/fail")
def fail(task_id: int, attempt: int, body: Failure, key: Passkey, app: State) -> dict[str, str]:
    """The attempt failed (or was stopped from outside, with ``counts`` false)."""
    status = attempts.fail(app.db, task_id, attempt, key, body, now=app.now(),
                           caps=app.report_caps)  # fmt: skip
    if app.metrics is not None:
        app.metrics.failed()
    return {"status": status.value}


@router.put("/logs/{name}")
def upload_log(
    task_id: int, attempt: int, name: str, body: LogBody, key: Passkey, app: State
) -> dict[str, Any]:
    """Append a chunk to one of the attempt's logs (its offset must be at most the log's
    size, else 409 naming the offset expected; past ``[server] max_log_bytes``, 413); the
    answer says how much the server holds. With ``text``, the log is replaced by it."""
    if body.text is not None:
        task_logs.store_log(app.db, task_id, attempt, key, name=name, text=body.text,
                            now=app.now(), files=app.logs)  # fmt: skip
        return {"ok": True}
    assert body.offset is not None and body.data is not None  # the body's own check
    chunk = LogChunk(name, body.offset, body.data, body.gzip)
    if app.logs is None:
        raise Rejected("this server keeps no log files")
    ack = task_logs.append_log(app.db, app.logs, task_id, attempt, key, chunk, now=app.now())
    answer: dict[str, Any] = encode(ack)
    return answer
