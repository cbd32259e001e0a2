"""The timeout watchdog: tasks whose site or pilot went silent are reset.

A task ``queued`` longer than its dataset's ``queued_timeout``, ``processing`` longer than
``processing_timeout``, or without a heartbeat for ``heartbeat_timeout`` counts a failure
and goes back to waiting (or fails for good at ``max_failures``, or is suspended in debug
mode), exactly as if its pilot had reported the failure. ``now`` is passed in.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, and_, func, or_, select

from frazil.errors import StaleAttempt
from frazil.model.states import ACTIVE_TASK_STATES, AttemptOutcome, DatasetStatus, TaskStatus
from frazil.services.attempts import fail_current
from frazil.services.transitions import TASK_ROW_COLUMNS, task_row
from frazil.store.db import Database, locks_rows
from frazil.store.schema import dataset, task
from frazil.wire import Failure

log = logging.getLogger(__name__)

ACTOR = "daemon:watchdog"


def _expired(conn: Connection, now: float, limit: int) -> list[tuple[int, str]]:
    """(task id, reason) of up to ``limit`` tasks past a timeout."""
    datasets = conn.execute(
        select(
            dataset.c.id,
            dataset.c.queued_timeout,
            dataset.c.processing_timeout,
            dataset.c.heartbeat_timeout,
        ).where(dataset.c.status != DatasetStatus.COMPLETE.value)
    ).all()
    found: list[tuple[int, str]] = []
    for d in datasets:
        queued = and_(
            task.c.status == TaskStatus.QUEUED.value,
            task.c.status_changed < now - d.queued_timeout,
        )
        processing = and_(
            task.c.status == TaskStatus.PROCESSING.value,
            or_(
                task.c.status_changed < now - d.processing_timeout,
                func.coalesce(task.c.heartbeat_at, task.c.status_changed)
                < now - d.heartbeat_timeout,
            ),
        )
        rows = conn.execute(
            select(task.c.id, task.c.status, task.c.status_changed, task.c.heartbeat_at)
            .where(
                task.c.dataset_id == d.id,
                task.c.status.in_(sorted(s.value for s in ACTIVE_TASK_STATES)),
                or_(queued, processing),
            )
            .limit(limit - len(found))
        ).all()
        for r in rows:
            if r.status == TaskStatus.QUEUED.value:
                reason = (
                    f"queued for {now - r.status_changed:.0f} s (limit {d.queued_timeout:.0f} s)"
                )
            elif r.status_changed < now - d.processing_timeout:
                reason = (
                    f"processing for {now - r.status_changed:.0f} s "
                    f"(limit {d.processing_timeout:.0f} s)"
                )
            else:
                last = r.heartbeat_at or r.status_changed
                reason = f"no heartbeat for {now - last:.0f} s (limit {d.heartbeat_timeout:.0f} s)"
            found.append((r.id, reason))
        if len(found) >= limit:
            break
    return found


def timeouts_step(db: Database, now: float, *, limit: int = 1000) -> int:
    """One round of the watchdog; returns how many tasks it reset or failed."""
    with db.read() as conn:
        expired = _expired(conn, now, limit)
    done = 0
    for task_id, reason in expired:

        def one(conn: Connection, task_id: int = task_id, reason: str = reason) -> bool:
            stmt = select(*TASK_ROW_COLUMNS).where(task.c.id == task_id)
            if locks_rows(conn):
                stmt = stmt.with_for_update()
            row = conn.execute(stmt).first()
            if row is None or row.status not in (
                TaskStatus.QUEUED.value,
                TaskStatus.PROCESSING.value,
            ):
                return False  # it moved on since we looked
            try:
                fail_current(
                    conn, task_row(row), Failure(f"timeout: {reason}"), now=now, actor=ACTOR,
                    outcome=AttemptOutcome.TIMEOUT, attempt_id=None,
                )  # fmt: skip
            except StaleAttempt:
                return False
            return True

        if db.transaction(one):
            done += 1
    if done:
        log.info("watchdog reset %d task(s) past their timeouts", done)
    return done
