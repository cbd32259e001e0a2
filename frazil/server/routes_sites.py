"""Routes for sites: registration, heartbeat, and the site side of the protocol.

A site token may act only for the site of the same name (an admin token for any).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from frazil.server.deps import Reader, Site, State, own
from frazil.server.schemas import AttemptsBody, BatchIdBody, KnownBody, LostBody, slot
from frazil.services import batch_jobs, sites
from frazil.services.claim import claim, claim_jobs
from frazil.wire import ClaimRequest, SiteInfo, SiteStatus, SiteView, encode

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get("")
def list_sites(app: State, _: Reader) -> list[SiteView]:
    """Every registered site."""
    return sites.list_sites(app.db)


@router.get("/status")  # before any GET "/{name}" route, which would take "status" for a name
def site_statuses(app: State, _: Reader) -> list[SiteStatus]:
    """Every registered site with its last contact, what one slot offers, its tasks running
    and queued, and its attempts that failed in the last hour."""
    return sites.site_statuses(app.db, now=app.now())


@router.put("/{name}")
def register(name: str, body: SiteInfo, app: State, who: Site) -> SiteView:
    """Register the site, or update what its slots offer."""
    own(who, name)
    resources = slot(name, body)
    return sites.register(
        app.db, resources, now=app.now(), info={**body.info, "system": dict(body.system)}
    )


@router.post("/{name}/heartbeat")
def heartbeat(name: str, app: State, who: Site) -> dict[str, bool]:
    """The site's daemon is alive."""
    own(who, name)
    sites.heartbeat(app.db, name, now=app.now())
    return {"ok": True}


@router.post("/{name}/claim")
def claim_tasks(name: str, body: ClaimRequest, app: State, who: Site) -> list[dict[str, Any]]:
    """Hand up to ``limit`` waiting tasks that fit one slot to the site."""
    own(who, name)
    resources = slot(name, body)
    claims = claim(app.db, resources, body.limit, app.now(), request_id=body.request_id)
    if app.metrics is not None:
        app.metrics.claimed(len(claims))
    return [encode(c) for c in claims]


@router.post("/{name}/tasks/{task_id}/attempts/{attempt}/batch")
def record_batch_id(
    name: str, task_id: int, attempt: int, body: BatchIdBody, app: State, who: Site
) -> dict[str, bool]:
    """The site submitted the attempt to its batch system under this id."""
    own(who, name)
    batch_jobs.record_batch_id(app.db, task_id, attempt, body.batch_id, site=name)
    return {"ok": True}


@router.post("/{name}/tasks/{task_id}/attempts/{attempt}/lost")
def lost(
    name: str, task_id: int, attempt: int, body: LostBody, app: State, who: Site
) -> dict[str, str | None]:
    """The attempt's batch job ended without a report from its pilot: reset the task."""
    own(who, name)
    status = batch_jobs.lost(
        app.db, task_id, attempt, site=name, now=app.now(), reason=body.reason,
        outcome=body.outcome, counts=body.counts,
    )  # fmt: skip
    if app.metrics is not None and status is not None:
        app.metrics.failed()
    return {"status": status.value if status else None}


@router.post("/{name}/attempts/stale")
def stale(name: str, body: AttemptsBody, app: State, who: Site) -> dict[str, list[list[int]]]:
    """Which of the site's running attempts are no longer current (cancel their batch jobs)."""
    own(who, name)
    pairs = [(a.task_id, a.attempt) for a in body.attempts]
    return {"stale": [list(p) for p in batch_jobs.stale_attempts(app.db, name, pairs)]}


@router.post("/{name}/attempts/unsubmitted")
def unsubmitted(name: str, body: KnownBody, app: State, who: Site) -> dict[str, list[list[int]]]:
    """The site's claimed attempts that no pilot started and that it does not know (its
    claim's answer was lost, or it died before submitting them): to hand back or submit."""
    own(who, name)
    pairs = batch_jobs.unsubmitted(app.db, name, body.known)
    return {"unsubmitted": [list(p) for p in pairs]}


@router.post("/{name}/claim-jobs")
def claim_whole_jobs(name: str, body: ClaimRequest, app: State, who: Site) -> list[dict[str, Any]]:
    """Hand up to ``limit`` whole jobs to the site (to run their DAGs in its batch system)."""
    own(who, name)
    resources = slot(name, body)
    jobs = claim_jobs(app.db, resources, body.limit, app.now())
    if app.metrics is not None:
        app.metrics.claimed(sum(1 for j in jobs for t in j.tasks if t.attempt))
    return [encode(j) for j in jobs]
