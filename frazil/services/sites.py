"""Sites: registration and liveness. A site names the resources one of its slots offers."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from frazil.errors import NotFound, Rejected
from frazil.model.records import SiteResources
from frazil.model.states import AttemptOutcome, TaskStatus
from frazil.services.claim import row_fits
from frazil.store.db import Database
from frazil.store.schema import dataset, site, task, task_attempt
from frazil.wire import FAILED_WINDOW, SiteStatus, SiteView

#: A site seen (registered, heartbeat) this recently counts as one that could take a task.
ALIVE = 600.0
SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}\Z")  # \Z: "$" lets a final "\n" in


def check_site_name(name: str) -> str:
    """A site name is plain (it appears in paths, batch job names and logs)."""
    if not SITE_NAME.match(name):
        raise Rejected(
            f"a site name is 1-100 letters, digits, '_', '.' or '-', starting with a letter "
            f"or digit; got {name!r}"
        )
    return name


def register(
    db: Database, resources: SiteResources, *, now: float, info: dict[str, Any] | None = None
) -> SiteView:
    """Register a site, or update what it offers."""
    check_site_name(resources.name)
    values = {
        "resources": json.dumps(asdict(resources), default=str),
        "info": json.dumps(info or {}),
        "last_seen": now,
    }

    def run(conn: Connection) -> None:
        changed = conn.execute(update(site).where(site.c.name == resources.name).values(**values))
        if changed.rowcount == 0:
            conn.execute(insert(site).values(name=resources.name, registered_at=now, **values))

    db.transaction(run)
    return get_site(db, resources.name)


def heartbeat(db: Database, name: str, *, now: float) -> None:
    """The site's daemon is alive."""

    def run(conn: Connection) -> None:
        if (
            conn.execute(update(site).where(site.c.name == name).values(last_seen=now)).rowcount
            != 1
        ):
            raise NotFound(f"no site {name!r}: register it first")

    db.transaction(run)


def _view(r: Any) -> SiteView:
    return SiteView(
        r.name, json.loads(r.resources), json.loads(r.info), r.registered_at, r.last_seen
    )


def get_site(db: Database, name: str) -> SiteView:
    """One site; ``NotFound`` if it never registered."""
    with db.read() as conn:
        r = conn.execute(select(site).where(site.c.name == name)).first()
    if r is None:
        raise NotFound(f"no site {name!r}")
    return _view(r)


def list_sites(db: Database) -> list[SiteView]:
    """Every registered site."""
    with db.read() as conn:
        return [_view(r) for r in conn.execute(select(site).order_by(site.c.name))]


#: Attempts that ended this way went wrong at their site (not a person's or the batch
#: system's doing): what ``SiteStatus.failed`` counts.
FAILED_OUTCOMES = (AttemptOutcome.FAILED, AttemptOutcome.TIMEOUT, AttemptOutcome.VANISHED)


def site_statuses(db: Database, *, now: float) -> list[SiteStatus]:
    """Every registered site with its last contact, what one slot offers, its tasks running
    and queued, and its attempts that failed in the last ``FAILED_WINDOW`` seconds (three
    grouped queries, whatever the number of sites)."""
    queued, running = TaskStatus.QUEUED.value, TaskStatus.PROCESSING.value
    with db.read() as conn:
        rows = conn.execute(select(site).order_by(site.c.name)).all()
        tasks: dict[tuple[str, str], int] = {}
        # by dataset first: the (dataset, status) index finds the held tasks
        for r in conn.execute(
            select(task.c.site, task.c.status, func.count().label("n"))
            .where(task.c.dataset_id.in_(select(dataset.c.id)),
                   task.c.status.in_((queued, running)), task.c.site.is_not(None))
            .group_by(task.c.site, task.c.status)
        ):  # fmt: skip
            tasks[(r.site, r.status)] = int(r.n)
        failed = {
            r.site: int(r.n)
            for r in conn.execute(
                select(task_attempt.c.site, func.count().label("n"))
                .where(
                    task_attempt.c.ended_at >= now - FAILED_WINDOW,
                    task_attempt.c.outcome.in_([o.value for o in FAILED_OUTCOMES]),
                )
                .group_by(task_attempt.c.site)
            )
        }
    statuses = []
    for r in rows:
        slot = SiteResources(**json.loads(r.resources))
        statuses.append(
            SiteStatus(
                name=r.name, last_seen=r.last_seen, age=max(0.0, now - r.last_seen),
                cpu=slot.cpu, gpu=slot.gpu, memory=slot.memory, disk=slot.disk,
                time=slot.time, os=slot.os, attributes=dict(slot.attributes),
                info=json.loads(r.info), running=tasks.get((r.name, running), 0),
                queued=tasks.get((r.name, queued), 0), failed=failed.get(r.name, 0),
            )
        )  # fmt: skip
    return statuses


def site_to_avoid(conn: Connection, task_id: int, now: float) -> str | None:
    """The site where the task's current attempt ran, if another site seen in the last
    ``ALIVE`` seconds fits the task too: the retry of a failure that may be the site's
    prefers another site. None when none other could take it (or the task ran nowhere)."""
    t = conn.execute(
        select(
            task.c.site, task.c.cpu, task.c.gpu, task.c.memory, task.c.disk, task.c.time,
            task.c.os, task.c.site_req, task.c.req_extra,
        ).where(task.c.id == task_id)
    ).first()  # fmt: skip
    if t is None or t.site is None:
        return None
    others = conn.execute(
        select(site.c.resources).where(site.c.name != t.site, site.c.last_seen >= now - ALIVE)
    ).scalars()
    if any(row_fits(t, SiteResources(**json.loads(text))) for text in others):
        return str(t.site)
    return None
