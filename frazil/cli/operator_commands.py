"""What an operator watches: the audit trail (``events``), the sites (``sites``) and the
multi-task pilots (``pilots``), each a listing over the API like every user command."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from frazil.cli import connect
from frazil.cli.output import (
    AllOpt,
    ColumnsOpt,
    JsonOpt,
    LimitOpt,
    Listing,
    OffsetOpt,
    Output,
    OutputOpt,
    age,
    columns,
    mode,
    print_json,
    print_pages,
    show,
    when,
)
from frazil.errors import FrazilError

if TYPE_CHECKING:
    from frazil.wire import EventView, PilotView


_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])\Z")
_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
SINCE_HELP = (
    "From this time on: a date and time (2026-12-01, 2026-12-01T10:00) or an age (30m, 2h, 1d, 1w)."
)


def since_time(text: str, now: float) -> float:
    """The Unix time ``--since`` means: a relative age before ``now`` (``30m``, ``2h``,
    ``1d``, ``1w``), or an ISO date or date and time (local time unless it names its zone).
    Anything else is an error that says what is accepted."""
    value = text.strip()
    try:
        found = _AGE.match(value)
        if found:
            moment = now - float(found[1]) * _SECONDS[found[2]]
        else:
            moment = datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError, OSError):
        moment = math.nan
    if not math.isfinite(moment):
        raise FrazilError(
            f"--since {text!r}: not a date and time (2026-12-01, 2026-12-01T10:00) "
            "nor an age (30m, 2h, 1d, 1w)"
        )
    return moment


def events(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset (id or alias).")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="Only events of this kind (suspend, ...).")
    ] = None,
    since: Annotated[str | None, typer.Option(help=SINCE_HELP)] = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    every: AllOpt = False,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    cols: ColumnsOpt = None,
) -> None:
    """The audit trail, newest first: who did what to which dataset, job or task, and why."""

    def table(rows: list[EventView]) -> Listing:
        listing = Listing(columns("id*#", "time*", "actor", "dataset#", "object*", "action",
                                  "old", "new", "count#", "reason"))  # fmt: skip
        for e in rows:
            listing.add(e.id, when(e.time), e.actor, e.dataset_id, f"{e.object_type} {e.object_id}",
                        e.action, e.old_status, e.new_status, e.count, e.reason)  # fmt: skip
        return listing

    how = mode(output, as_json)
    start = None if since is None else since_time(since, time.time())
    with connect.client() as client:
        print_pages(
            lambda n, skip: client.events_page(
                dataset, kind=kind, since=start, limit=n, offset=skip
            ),
            how, table, limit=limit, offset=offset, every=every, names=cols,
        )  # fmt: skip


def _attributes(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(values.items())
    )


def sites(as_json: JsonOpt = False, output: OutputOpt = None, cols: ColumnsOpt = None) -> None:
    """Every registered site: its last contact, what one slot offers, its tasks running and
    queued, and its attempts that failed in the last hour."""
    how = mode(output, as_json)
    with connect.client() as client:
        rows = client.site_statuses()
    if how is Output.JSON:
        print_json(rows)
        return
    listing = Listing(columns(
        "site*", "last contact*", "age#", "cpu#", "gpu#", "memory GB#", "disk GB#", "time h#",
        "os", "attributes", "running#", "queued#", "failed 1h#",
    ))  # fmt: skip
    for s in rows:
        listing.add(
            s.name, when(s.last_seen), age(s.age), s.cpu, s.gpu, f"{s.memory:g}",
            f"{s.disk:g}", f"{s.time:g}", s.os, _attributes(s.attributes), s.running,
            s.queued, s.failed,
        )  # fmt: skip
    show(listing, how, cols)


def pilots(
    site: Annotated[str | None, typer.Option("--site", "-s", help="Only this site's.")] = None,
    only_open: Annotated[bool, typer.Option("--open", help="Only pilots still running.")] = False,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    every: AllOpt = False,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    cols: ColumnsOpt = None,
) -> None:
    """Multi-task pilots, newest first: where they run, what they hold, how many tasks."""

    def table(rows: list[PilotView]) -> Listing:
        listing = Listing(columns(
            "id*#", "site*", "state", "running#", "tasks#", "cpu#", "gpu#", "memory GB#",
            "disk GB#", "time h#", "host", "batch id", "created*", "last seen*", "reason",
        ))  # fmt: skip
        for p in rows:
            listing.add(
                p.id, p.site, p.state, p.running, p.tasks, p.cpu, p.gpu, f"{p.memory:g}",
                f"{p.disk:g}", f"{p.time:g}", p.host, p.batch_id, when(p.created_at),
                when(p.seen_at), p.reason,
            )  # fmt: skip
        return listing

    how = mode(output, as_json)
    with connect.client() as client:
        print_pages(
            lambda n, skip: client.pilots_page(site, open_only=only_open, limit=n, offset=skip),
            how, table, limit=limit, offset=offset, every=every, names=cols,
        )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command()(events)
    app.command()(sites)
    app.command()(pilots)


__all__ = ["register", "since_time"]
