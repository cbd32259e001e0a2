"""The audit trail: who did what to which dataset, job or task, and why."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from frazil.server.deps import Reader, State
from frazil.services import permissions, queries
from frazil.services.permissions import Right
from frazil.wire import TOTAL_HEADER, EventView

router = APIRouter(tags=["events"])


@router.get("/events")
def list_events(
    app: State, who: Reader, response: Response, dataset: str | None = None,
    kind: str | None = None, since: float | None = None,
    limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0),
) -> list[EventView]:  # fmt: skip
    """The audit trail, newest first: of one ``dataset`` (id or alias), of one ``kind`` (the
    event's action), from ``since`` (a Unix time) on (how many match in all: the
    ``Frazil-Total`` header): those of datasets the caller may read. An unknown dataset or
    kind is an error."""
    if dataset is not None:
        permissions.guard(app.db, who, dataset, Right.READ)
    page = queries.events_page(
        app.db, dataset_ref=dataset, kind=kind, since=since, limit=limit, offset=offset,
        where=None if who.admin else permissions.visible(who),
    )  # fmt: skip
    response.headers[TOTAL_HEADER] = str(page.total)
    return page.items
