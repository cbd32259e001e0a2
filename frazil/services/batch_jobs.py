"""What a site says about the batch jobs of its attempts: their ids, the ones that ended
without a word from their pilot, and which of them are no longer wanted.

A batch job that ended is never assumed to have completed its task: only the pilot's own
report completes it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Connection, and_, select, update

from frazil.errors import NotFound, Rejected, StaleAttempt
from frazil.model.states import ACTIVE_TASK_STATES, AttemptOutcome, TaskStatus, attempt_is_current
from frazil.services.attempts import fail_current
from frazil.services.claim import CLAIMABLE
from frazil.services.transitions import TaskRow, load_task
from frazil.store.db import Database
from frazil.store.schema import dataset, task, task_attempt
from frazil.wire import Failure


def record_batch_id(db: Database, task_id: int, attempt: int, batch_id: str, *, site: str) -> None:
    """The site submitted the attempt to its batch system under ``batch_id``."""

    def run(conn: Connection) -> None:
        result = conn.execute(
            update(task_attempt)
            .where(
                task_attempt.c.task_id == task_id,
                task_attempt.c.number == attempt,
                task_attempt.c.site == site,
                task_attempt.c.outcome == AttemptOutcome.OPEN.value,
            )
            .values(batch_id=batch_id[:255])
        )
        if result.rowcount != 1:
            raise StaleAttempt(f"task {task_id} attempt {attempt} is not open at site {site}")

    db.transaction(run)


def lost(
    db: Database, task_id: int, attempt: int, *, site: str, now: float, reason: str,
    outcome: AttemptOutcome = AttemptOutcome.VANISHED, counts: bool = True,
) -> TaskStatus | None:  # fmt: skip
    """A site reports that the attempt's batch job ended without a word from its pilot.

    The task is reset (counting a failure, unless ``counts`` is false: the site could not
    even submit it): a job that vanished is never assumed complete. Returns the task's new
    status, or None when the attempt had already ended (the pilot's report won the race).
    """

    def run(conn: Connection) -> TaskStatus | None:
        row = load_task(conn, task_id)
        if row is None:
            raise NotFound(f"no task {task_id}")
        a = conn.execute(
            select(task_attempt.c.id, task_attempt.c.site, task_attempt.c.outcome).where(
                task_attempt.c.task_id == task_id, task_attempt.c.number == attempt
            )
        ).first()
        if a is None:
            raise NotFound(f"task {task_id} has no attempt {attempt}")
        if a.site != site:
            raise Rejected(f"task {task_id} attempt {attempt} belongs to site {a.site!r}")
        if a.outcome != AttemptOutcome.OPEN:
            return None
        return end_from_outside(
            conn, row, attempt, a.id, now=now, reason=reason, actor=f"site:{site}",
            outcome=outcome, counts=counts,
        )  # fmt: skip

    return db.transaction(run)


def end_from_outside(
    conn: Connection, row: TaskRow, attempt: int, attempt_id: int, *, now: float, reason: str,
    actor: str, outcome: AttemptOutcome, counts: bool,
) -> TaskStatus | None:  # fmt: skip
    """End an open attempt whose batch job (or pilot) ended without reporting it.

    Nothing happens (None) unless it is still the task's current, active attempt; a job
    killed at its walltime asks for more time next time.
    """
    active = row.status in ACTIVE_TASK_STATES
    if row.attempts != attempt or not active:
        return None
    exhausted = ("time",) if outcome is AttemptOutcome.TIMEOUT else ()
    failure = Failure(reason, exhausted=exhausted, counts=counts)
    return fail_current(
        conn, row, failure, now=now, actor=actor, outcome=outcome, attempt_id=attempt_id
    )


def stale_attempts(
    db: Database, site: str, pairs: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Which of a site's (task, attempt) pairs are no longer current: their batch jobs should go.

    An attempt is current while it is open and its task is queued or processing with that
    attempt number; a suspended, reset or finished task's batch job is only in the way.
    """
    if not pairs:
        return []
    ids = sorted({t for t, _ in pairs})
    with db.read() as conn:
        tasks = {
            r.id: r
            for r in conn.execute(
                select(task.c.id, task.c.status, task.c.attempts).where(task.c.id.in_(ids))
            )
        }
        rows = conn.execute(
            select(task_attempt.c.task_id, task_attempt.c.number, task_attempt.c.outcome,
                   task_attempt.c.site)
            .where(task_attempt.c.task_id.in_(ids))
        ).all()  # fmt: skip
    opened = {(r.task_id, r.number): r for r in rows}
    stale = []
    for task_id, number in pairs:
        t, a = tasks.get(task_id), opened.get((task_id, number))
        current = (
            t is not None and a is not None and a.site == site
            and attempt_is_current(
                status=t.status, attempts=t.attempts, number=number, outcome=a.outcome
            )
        )  # fmt: skip
        if not current:
            stale.append((task_id, number))
    return stale


def unsubmitted(db: Database, site: str, known: Collection[int]) -> list[tuple[int, int]]:
    """The (task, attempt) pairs a site claimed that no pilot has started and that the site
    does not know among its batch jobs (``known`` task ids): their claim's answer was lost,
    or the site died before submitting them. The site hands them back (or submits them).

    A site's own pilots only (a multi-task pilot's tasks are started as they are handed out).
    """
    claimable = select(dataset.c.id).where(dataset.c.status.in_(CLAIMABLE))
    current = and_(task_attempt.c.task_id == task.c.id, task_attempt.c.number == task.c.attempts)
    stmt = (
        select(task.c.id, task.c.attempts)
        .join(task_attempt, current)
        .where(
            task.c.dataset_id.in_(claimable),
            task.c.status == TaskStatus.QUEUED.value,
            task.c.site == site,
            task_attempt.c.site == site,
            task_attempt.c.outcome == AttemptOutcome.OPEN.value,
            task_attempt.c.started_at.is_(None),
            task_attempt.c.pilot_id.is_(None),
        )
        .order_by(task.c.id)
    )
    mine = set(known)
    with db.read() as conn:
        return [(r.id, r.attempts) for r in conn.execute(stmt) if r.id not in mine]
