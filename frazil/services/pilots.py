"""Multi-task pilots (the glidein model): one batch job that runs task after task.

A site creates a pilot before it submits the pilot's batch job and gets the pilot's key
(only its hash is stored). The pilot then *exchanges* with the server: it reports the
tasks it finished or failed, and is handed new tasks that fit what it has left; every task
still gets its own attempt and passkey, so the per-attempt rules (a stale attempt changes
nothing) hold as for single-task pilots. A task handed to a pilot starts at once
(``processing``): the pilot is already running on a worker node.

The server keeps the pilot's account: what its open attempts hold is subtracted from what
its batch job offers, so two exchanges of one pilot at the same time cannot overfill it.

An exchange may carry a request id, as a site's claim does: when its answer was lost, the
repeated exchange gets the tasks the first one handed out (started, with the same passkeys
and specs) instead of leaving them to the heartbeat timeout.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from frazil.errors import (
    BadPasskey,
    NotFound,
    Rejected,
    StaleAttempt,
    StoreError,
    TooLarge,
)
from frazil.model.records import SiteResources
from frazil.model.states import (
    ACTIVE_TASK_STATES,
    AttemptOutcome,
    PilotState,
    TaskStatus,
)
from frazil.services import attempts, batch_jobs, pilot_tasks, task_logs
from frazil.services.claim import (
    CLAIMABLE,
    MAX_BATCH,
    fit_conditions,
    fit_params,
)  # fmt: skip
from frazil.services.keys import check_request_id, hash_key, key_matches
from frazil.services.transitions import load_task
from frazil.store.db import Database, UntranslatedError, locks_rows
from frazil.store.log_files import LogFiles
from frazil.store.prepared import prepared
from frazil.store.schema import dataset, pilot, site, task, task_attempt
from frazil.wire import LogAck, Page, PilotView, Report, Slot

log = logging.getLogger(__name__)

#: How many reports one exchange may carry.
MAX_REPORTS = 1000


def create(db: Database, site_name: str, slot: Slot, *, now: float) -> tuple[int, str]:
    """A new pilot of ``site_name``: its id and its key (shown once)."""
    key = secrets.token_urlsafe(24)

    def run(conn: Connection) -> int:
        if conn.execute(select(site.c.name).where(site.c.name == site_name)).first() is None:
            raise NotFound(f"no site {site_name!r}: register it first")
        result = conn.execute(
            insert(pilot).values(
                site=site_name,
                key_hash=hash_key(key),
                cpu=slot.cpu,
                gpu=slot.gpu,
                memory=slot.memory,
                disk=slot.disk,
                time=slot.time,
                os=slot.os,
                attributes=json.dumps(dict(slot.attributes)) if slot.attributes else None,
                state=PilotState.OPEN.value,
                created_at=now,
                tasks=0,
            )
        )
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])

    return db.transaction(run), key


def record_batch_id(db: Database, pilot_id: int, batch_id: str, *, site_name: str) -> None:
    """The site submitted the pilot's batch job under ``batch_id``."""

    def run(conn: Connection) -> None:
        changed = conn.execute(
            update(pilot)
            .where(pilot.c.id == pilot_id, pilot.c.site == site_name)
            .values(batch_id=batch_id[:255])
        ).rowcount
        if changed != 1:
            raise NotFound(f"site {site_name!r} has no pilot {pilot_id}")

    db.transaction(run)


def _pilot_stmt(lock: bool) -> Any:
    stmt = select(pilot).where(pilot.c.id == bindparam("p_id"))
    return stmt.with_for_update() if lock else stmt


def _pilot(conn: Connection, pilot_id: int, key: str) -> Any:
    lock = locks_rows(conn)  # one pilot's exchanges take turns
    stmt = prepared(("pilot", lock), lambda: _pilot_stmt(lock))
    row = conn.execute(stmt, {"p_id": pilot_id}).first()
    if row is None or not key_matches(row.key_hash, key):
        raise BadPasskey(f"wrong key for pilot {pilot_id}")
    if row.state != PilotState.OPEN:
        raise StaleAttempt(f"pilot {pilot_id} has ended: {row.reason or 'no reason given'}")
    return row


def report(
    db: Database, pilot_id: int, key: str, reports: Sequence[Report], *, now: float
) -> list[str]:
    """Apply a pilot's reports in one transaction; ``ok``, ``stale`` or ``denied`` for each.

    A report about an attempt that is no longer current (or not this pilot's) changes
    nothing, and does not spoil the others.
    """
    results, _ = exchange(db, pilot_id, key, reports, limit=0, time_left=None, now=now)
    return results


def exchange(
    db: Database, pilot_id: int, key: str, reports: Sequence[Report], *, limit: int,
    time_left: float | None, now: float, host: str = "",
    caps: attempts.ReportCaps = attempts.DEFAULT_CAPS, request_id: str | None = None,
    logs: Logs | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:  # fmt: skip
    """``report`` and then ``take`` (with ``limit`` > 0), in one transaction: a pilot that
    reports a finished task gets the children it released (and anything else that now fits)
    in the same round trip. With ``request_id``, a repeated exchange gets the tasks that the
    first one handed out (and nothing new).

    A report past ``caps`` is ``refused``: its attempt fails with the cap as the reason (its
    statistics and files are dropped), and the other reports are applied as usual.

    Log chunks of the reports go to ``logs.files`` (none: the server keeps no log files),
    their acknowledgements to ``logs.acks``.
    """
    if len(reports) > MAX_REPORTS:
        raise Rejected(f"at most {MAX_REPORTS} reports at once, not {len(reports)}")
    if not 0 <= limit <= MAX_BATCH:
        raise Rejected(f"take between 0 and {MAX_BATCH} tasks at a time, not {limit}")
    if request_id is not None:
        check_request_id(request_id)
    skip_locked = db.skip_locked

    sink = logs or Logs()

    def run(conn: Connection, limit: int) -> tuple[list[str], list[dict[str, Any]]]:
        p = _pilot(conn, pilot_id, key)
        sink.acks.clear()  # a transaction run again acknowledges again
        results = [_report_one(conn, pilot_id, r, now, caps, sink) for r in reports]
        try:
            again = pilot_tasks.again(conn, p, request_id) if limit and request_id else None
            if again is not None:
                tasks, handed = again, 0
            else:
                tasks = pilot_tasks.hand_out(
                    conn, p, limit, time_left, now, host, skip_locked, request_id
                )
                handed = len(tasks)
        except (StoreError, UntranslatedError):
            raise  # the database's trouble: the transaction retries or gives up whole
        except Exception as exc:
            if not reports:
                raise
            raise _HandOutFailed(str(exc)) from exc
        seen = prepared(
            "pilot_seen",
            lambda: (
                update(pilot)
                .where(pilot.c.id == bindparam("p_id"))
                .values(
                    seen_at=bindparam("p_now"),
                    host=func.coalesce(bindparam("p_host"), pilot.c.host),
                    tasks=pilot.c.tasks + bindparam("p_n"),
                )
            ),
        )
        conn.execute(
            seen, {"p_id": pilot_id, "p_now": now, "p_host": host[:255] or None, "p_n": handed}
        )
        return results, tasks

    try:
        return db.transaction(lambda conn: run(conn, limit))
    except _HandOutFailed as exc:
        # the reports must not be lost with it: apply them alone
        log.error("pilot %d: handing out tasks failed, applying its reports alone: %s",
                  pilot_id, exc)  # fmt: skip
        return db.transaction(lambda conn: run(conn, 0))


@dataclass
class Logs:
    """Where an exchange's log chunks go, and what the server answers for each."""

    files: LogFiles | None = None
    acks: list[LogAck] = field(default_factory=list)


class _HandOutFailed(Exception):
    """Handing out tasks failed after a pilot's reports were applied in the transaction."""


def _report_one(
    conn: Connection, pilot_id: int, r: Report, now: float, caps: attempts.ReportCaps,
    logs: Logs,
) -> str:  # fmt: skip
    a = attempts.attempt_row(conn, r.task_id, r.attempt)
    if a is None and load_task(conn, r.task_id) is None:
        return "stale"  # its dataset was deleted, with its attempts
    if a is None or a.pilot_id != pilot_id:
        return "denied"
    try:
        try:
            _apply(conn, r, now, caps, a, logs)
        except TooLarge as exc:
            _apply(conn, _refused(r, exc), now, caps, a, logs)
            return "refused"
    except (StaleAttempt, NotFound):
        return "stale"
    except BadPasskey:
        return "denied"
    return "ok"


def _refused(r: Report, exc: TooLarge) -> Report:
    """A report past the caps, as the failure of its attempt that says why (its logs kept)."""
    said = f"; the pilot reported: {r.error}" if r.kind == "fail" and r.error else ""
    return dataclasses.replace(
        r, kind="fail", error=f"the server refused the pilot's report: {exc}{said}", stats={},
        files=(), counts=r.counts or r.kind != "fail",
    )  # fmt: skip


def _apply(
    conn: Connection, r: Report, now: float, caps: attempts.ReportCaps, attempt_row: Any,
    logs: Logs,
) -> None:  # fmt: skip
    # authenticated once; every check comes before any write, so a refused report writes nothing
    states = [TaskStatus.PROCESSING] if r.kind == "finish" else ACTIVE_TASK_STATES
    checked = attempts.authenticate(
        conn, r.task_id, r.attempt, r.passkey, states, attempt_row=attempt_row
    )
    if r.kind not in ("finish", "fail", "log"):
        raise Rejected(f"unknown report kind {r.kind!r}: finish, fail or log")
    if r.kind != "log":
        attempts.check_report(r.stats, r.files, caps)
    task_logs.store_logs_in(
        conn, r.task_id, r.attempt, r.passkey, r.logs, now=now, checked=checked, files=logs.files
    )
    logs.acks.extend(task_logs.append_logs_in(conn, logs.files, checked, r.chunks, now=now))
    if r.kind == "finish":
        attempts.finish_in(
            conn, r.task_id, r.attempt, r.passkey, r.finish, now=now, checked=checked, caps=caps
        )
    elif r.kind == "fail":
        attempts.fail_in(
            conn, r.task_id, r.attempt, r.passkey, r.failure, now=now, checked=checked, caps=caps
        )


def take(
    db: Database, pilot_id: int, key: str, *, limit: int, time_left: float | None, now: float,
    host: str = "", request_id: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Hand the pilot up to ``limit`` waiting tasks that fit in what it has left, started.

    Each comes with its attempt, passkey and resolved spec. ``time_left`` (hours) is what
    remains of the pilot's walltime: only tasks that need no more are handed out.
    """
    if limit <= 0:
        raise Rejected(f"take between 1 and {MAX_BATCH} tasks at a time, not {limit}")
    _, tasks = exchange(
        db, pilot_id, key, [], limit=limit, time_left=time_left, now=now, host=host,
        request_id=request_id,
    )  # fmt: skip
    return tasks


def end(
    db: Database, pilot_id: int, *, now: float, reason: str, key: str | None = None,
    site_name: str | None = None, outcome: AttemptOutcome = AttemptOutcome.VANISHED,
    counts: bool = True,
) -> int:  # fmt: skip
    """The pilot ended (it says so with its key, or its site saw its batch job end).

    Attempts it still holds are ended (``outcome``; a failure unless ``counts`` is false),
    as for a single-task pilot whose batch job vanished. Returns how many. Ending an ended
    pilot again changes nothing.
    """

    def run(conn: Connection) -> int:
        p = conn.execute(select(pilot).where(pilot.c.id == pilot_id)).first()
        if p is None or (site_name is not None and p.site != site_name):
            raise NotFound(
                f"no pilot {pilot_id}" + (f" at site {site_name!r}" if site_name else "")
            )
        if key is not None and not key_matches(p.key_hash, key):
            raise BadPasskey(f"wrong key for pilot {pilot_id}")
        if p.state != PilotState.OPEN:
            return 0
        held = conn.execute(
            select(task_attempt.c.id, task_attempt.c.task_id, task_attempt.c.number).where(
                task_attempt.c.pilot_id == pilot_id,
                task_attempt.c.outcome == AttemptOutcome.OPEN.value,
            )
        ).all()
        ended = 0
        for a in held:
            row = load_task(conn, a.task_id)
            if row is None:
                continue
            new = batch_jobs.end_from_outside(
                conn, row, a.number, a.id, now=now, reason=f"pilot {pilot_id} ended: {reason}",
                actor=f"site:{p.site}", outcome=outcome, counts=counts,
            )  # fmt: skip
            if new is not None:
                ended += 1
        conn.execute(
            update(pilot)
            .where(pilot.c.id == pilot_id)
            .values(state=PilotState.ENDED.value, ended_at=now, reason=reason[:2000])
        )
        return ended

    return db.transaction(run)


def _pilot_view(r: Any, running: int) -> PilotView:
    return PilotView(
        id=r.id, site=r.site, state=r.state, cpu=r.cpu, gpu=r.gpu, memory=r.memory,
        disk=r.disk, time=r.time, os=r.os, attributes=json.loads(r.attributes or "{}"),
        batch_id=r.batch_id, host=r.host, created_at=r.created_at, seen_at=r.seen_at,
        ended_at=r.ended_at, reason=r.reason, tasks=r.tasks, running=running,
    )  # fmt: skip


def pilots_page(
    db: Database, site_name: str | None = None, *, open_only: bool = False, limit: int = 100,
    offset: int = 0, count: bool = True,
) -> Page[PilotView]:  # fmt: skip
    """A page of pilots, newest first, each with how many tasks it holds now, and how many
    pilots match in all (-1 when not ``count``); a site that never registered is
    ``NotFound``."""
    stmt = select(*(c for c in pilot.c if c.name != "key_hash"))
    if site_name is not None:
        stmt = stmt.where(pilot.c.site == site_name)
    if open_only:
        stmt = stmt.where(pilot.c.state == PilotState.OPEN.value)
    with db.read() as conn:
        if site_name is not None:
            _check_site(conn, site_name)
        rows = conn.execute(stmt.order_by(pilot.c.id.desc()).limit(limit).offset(offset)).all()
        held = (
            select(task_attempt.c.pilot_id, func.count().label("n"))
            .where(
                task_attempt.c.pilot_id.in_([r.id for r in rows]),
                task_attempt.c.outcome == AttemptOutcome.OPEN.value,
            )
            .group_by(task_attempt.c.pilot_id)
        )
        running = {r.pilot_id: int(r.n) for r in conn.execute(held)} if rows else {}
        counted = select(func.count()).select_from(stmt.subquery())
        total = int(conn.execute(counted).scalar_one()) if count else -1
    return Page([_pilot_view(r, running.get(r.id, 0)) for r in rows], total)


def _check_site(conn: Connection, name: str) -> None:
    if conn.execute(select(site.c.name).where(site.c.name == name)).first() is None:
        known = conn.execute(select(site.c.name).order_by(site.c.name)).scalars().all()
        raise NotFound(f"no site {name!r} (sites: {', '.join(known) or 'none registered'})")


def list_pilots(
    db: Database, site_name: str | None = None, *, open_only: bool = False
) -> list[PilotView]:
    """Pilots (newest first, at most 10,000), without their keys."""
    return pilots_page(db, site_name, open_only=open_only, limit=10_000, count=False).items


def demand(db: Database, resources: SiteResources, *, now: float, cap: int = 10_000) -> int:
    """How many waiting tasks (up to ``cap``) a pilot with ``resources`` could run (the claim's
    SQL rule; free-form attribute requirements are not counted out)."""
    with_os = bool(resources.os)

    def build() -> Any:
        claimable = select(dataset.c.id).where(dataset.c.status.in_(CLAIMABLE))
        capped = (
            select(task.c.id)
            .where(task.c.dataset_id.in_(claimable), *fit_conditions(with_os))
            .limit(bindparam("p_cap"))
            .subquery()
        )
        return select(func.count()).select_from(capped)

    stmt = prepared(("demand", with_os), build)
    with db.read() as conn:
        return int(conn.execute(stmt, {"p_cap": cap, **fit_params(resources, now)}).scalar_one())
