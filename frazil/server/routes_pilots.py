"""Routes for multi-task pilots: the site creates them; they exchange reports for tasks.

``POST /pilots/{id}/exchange`` is a long poll: when the pilot has room and nothing is ready,
the request waits (up to ``wait`` seconds) and returns the moment a task it can run becomes
ready, instead of at the pilot's next poll. Waiting requests hold no thread and no database
connection; they look again when woken, and at least once a second (tasks made ready by
another process wake nobody here).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from frazil.model.states import AttemptOutcome
from frazil.server.deps import PilotKey, Reader, Site, State, own
from frazil.server.schemas import BatchIdBody, LostBody, PilotEndBody, slot
from frazil.services import pilots
from frazil.wire import TOTAL_HEADER, ClaimRequest, Exchange, NewPilot, PilotView, Slot, encode

router = APIRouter(tags=["pilots"])

#: A waiting exchange looks for tasks again at least this often (seconds).
RECHECK = 1.0


@router.post("/sites/{name}/pilots")
def create_pilot(name: str, body: Slot, app: State, who: Site) -> dict[str, Any]:
    """A new multi-task pilot of the site: its id and key (the key is shown only here)."""
    own(who, name)
    pilot_id, key = pilots.create(app.db, name, body, now=app.now())
    answer: dict[str, Any] = encode(NewPilot(pilot_id, key))
    return answer


@router.post("/sites/{name}/pilots/{pilot_id}/batch")
def record_batch_id(
    name: str, pilot_id: int, body: BatchIdBody, app: State, who: Site
) -> dict[str, bool]:
    """The site submitted the pilot's batch job under this id."""
    own(who, name)
    pilots.record_batch_id(app.db, pilot_id, body.batch_id, site_name=name)
    return {"ok": True}


@router.post("/sites/{name}/pilots/{pilot_id}/ended")
def pilot_ended(name: str, pilot_id: int, body: LostBody, app: State, who: Site) -> dict[str, int]:
    """The pilot's batch job ended: tasks it still held are reset (never assumed complete)."""
    own(who, name)
    ended = pilots.end(
        app.db, pilot_id, now=app.now(), reason=body.reason, site_name=name,
        outcome=body.outcome, counts=body.counts,
    )  # fmt: skip
    if app.metrics is not None:
        for _ in range(ended):
            app.metrics.failed()
    return {"ended": ended}


@router.post("/sites/{name}/demand")
def demand(name: str, body: ClaimRequest, app: State, who: Site) -> dict[str, int]:
    """How many waiting tasks (up to ``limit``) fit what one of the site's pilots offers."""
    own(who, name)
    resources = slot(name, body)
    return {"waiting": pilots.demand(app.db, resources, now=app.now(), cap=body.limit)}


@router.get("/pilots")
def list_pilots(
    app: State, _: Reader, response: Response, site: str | None = None, open_only: bool = False,
    limit: int = Query(10_000, ge=1, le=10_000), offset: int = Query(0, ge=0),
) -> list[PilotView]:  # fmt: skip
    """Multi-task pilots, newest first: of one ``site`` (an unknown one is an error), only the
    open ones with ``open_only`` (how many match in all: the ``Frazil-Total`` header)."""
    page = pilots.pilots_page(app.db, site, open_only=open_only, limit=limit, offset=offset)
    response.headers[TOTAL_HEADER] = str(page.total)
    return page.items


@router.post("/pilots/{pilot_id}/exchange")
async def exchange(pilot_id: int, body: Exchange, key: PilotKey, app: State) -> dict[str, Any]:
    """Apply the pilot's reports, then hand it up to ``limit`` tasks that fit what it has left.

    With ``wait`` > 0 and nothing to hand out, the request waits for a task to become ready.
    A repeat (the same ``request_id``) gets the tasks the first one handed out; so does each
    look while it waits, so a request that lost its caller hands nothing new to nobody.
    """
    reports = body.reports
    deadline = time.monotonic() + body.wait
    since = app.waker.generation
    logs = pilots.Logs(app.logs)
    # one that takes nothing still shows its key (a pilot's way to check in)
    results, tasks = await run_in_threadpool(
        pilots.exchange, app.db, pilot_id, key, reports, limit=body.limit,
        time_left=body.time_left, now=app.now(), host=body.host, caps=app.report_caps,
        request_id=body.request_id, logs=logs,
    )  # fmt: skip
    if app.metrics is not None:
        for r, result in zip(body.reports, results, strict=True):
            if result == "ok" and r.kind == "finish":
                app.metrics.completed()
            elif result == "ok" and r.kind == "fail":
                app.metrics.failed()
    while body.limit and not tasks:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await app.waker.wait(since, min(left, RECHECK))
        since = app.waker.generation
        tasks = await run_in_threadpool(
            pilots.take, app.db, pilot_id, key, limit=body.limit, time_left=body.time_left,
            now=app.now(), host=body.host, request_id=body.request_id,
        )  # fmt: skip
    if tasks and app.metrics is not None:
        app.metrics.claimed(len(tasks))
    return {"results": results, "tasks": tasks, "logs": encode(logs.acks)}


@router.post("/pilots/{pilot_id}/end")
def end(pilot_id: int, body: PilotEndBody, key: PilotKey, app: State) -> dict[str, int]:
    """The pilot is done (idle, out of walltime, or stopped); anything it held is reset."""
    ended = pilots.end(
        app.db, pilot_id, now=app.now(), reason=body.reason, key=key,
        outcome=AttemptOutcome.CANCELLED, counts=False,
    )  # fmt: skip
    return {"ended": ended}
