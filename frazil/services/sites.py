"""Sites: registration and liveness. A site names the resources one of its slots offers."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, insert, select, update

from frazil.errors import NotFound, Rejected
from frazil.model.records import SiteResources
from frazil.services.claim import row_fits
from frazil.store.db import Database
from frazil.store.schema import site, task
from frazil.wire import SiteView

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
