"""What users do with datasets: submit, list, inspect and control them.

Every command speaks to a server through ``frazil.client.Client`` (``connect``): the one a
user logged in to, or the embedded database served in this process. Listings print for a
terminal, a pipe (``plain``), ``tsv`` or ``json`` (``output``).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

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
    columns,
    mode,
    note,
    print_json,
    print_pages,
    say,
    show,
    unit,
    when,
)
from frazil.errors import ConfigError, FrazilError

if TYPE_CHECKING:
    from frazil.wire import DatasetStatusView, JobView, TaskView

T = TypeVar("T")

DatasetArg = Annotated[str, typer.Argument(help="Dataset id or alias.")]
JobOpt = Annotated[int | None, typer.Option("--job", "-j", help="Only this job.", min=0)]
TaskOpt = Annotated[str | None, typer.Option("--task", "-t", help="Only tasks with this name.")]
TaskIdOpt = Annotated[int | None, typer.Option("--task-id", help="Only the task with this id.")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the audit trail).")]
#: numbers users give: what the server accepts (frazil.model.limits, checked there)
PRIORITY_HELP = "Weight in the fair share (0 to 1,000,000; 0: only leftovers)."


# -- submit -------------------------------------------------------------------------------


def submit_cmd(
    config: Annotated[Path, typer.Argument(help="Dataset config, YAML or JSON.")],
    jobs: Annotated[int, typer.Option("--jobs", "-n", help="Number of jobs.", min=0)] = 1,
    name: Annotated[str | None, typer.Option("--name", help="A unique alias.")] = None,
    priority: Annotated[float, typer.Option(help=PRIORITY_HELP)] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Dataset RNG seed (default: its id).")] = None,
    group: Annotated[
        str, typer.Option(help="Its group: members who may write control it too.")
    ] = "",
    private: Annotated[
        bool, typer.Option("--private", help="Seen only by you, its group and administrators.")
    ] = False,
    description: Annotated[
        str | None, typer.Option(help="What it is (default: the config's description).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit a dataset: the server checks it, stores it and creates its jobs.

    Files the config names by paths relative to its own file (a module's script or code, an
    input) are uploaded first and pinned by checksum, so that its tasks run at any site.
    """
    from frazil.cli import uploads  # noqa: PLC0415 - reads the config with the model

    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FrazilError(f"cannot read {config}: {exc}") from exc
    files = uploads.collect(config, text)
    with connect.client() as client:
        sent = uploads.Sent(0, 0, 0)
        if files:
            uploads.check_sizes(files, client.blob_limits())
            sent = uploads.upload(client, files)
        try:
            done = client.submit_dataset(
                text, jobs=jobs, alias=name, priority=priority, seed=seed, group=group,
                private=private, description=description, uploads={f.path: f.sha256 for f in files},
            )  # fmt: skip
        except ConfigError as exc:
            raise ConfigError(exc.problems, str(config)) from None
        if as_json:
            pinned = {f.path: f.sha256 for f in files}
            print_json({"dataset": done.id, "checked": done.checked, "uploads": pinned})
            return
        d = client.dataset(done.id).dataset
    if files:
        kept = f"; {sent.kept} the server had already" if sent.kept else ""
        say(f"uploaded {sent.files} files ({sent.bytes:,} bytes){kept}")
    say(
        f"submitted dataset {done.id}{f' ({name})' if name else ''}: {jobs} jobs of "
        f"{d.tasks_per_job} tasks, {d.jobs_materialized} created now; {done.checked.summary}"
    )


# -- listings -----------------------------------------------------------------------------


def datasets(
    status: Annotated[str | None, typer.Option(help="Only datasets in this state.")] = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    cols: ColumnsOpt = None,
) -> None:
    """List datasets, newest first."""
    with connect.client() as client:
        rows = client.datasets(status)
    how = mode(output, as_json)
    if how is Output.JSON:
        print_json(rows)
        return
    listing = Listing(columns("id*#", "alias*", "status", "jobs done#", "priority#", "owner",
                              "created*", "description"))  # fmt: skip
    for d in rows:
        listing.add(d.id, d.alias, d.status, f"{d.jobs_complete}/{d.jobs_submitted}",
                    f"{d.priority:g}", d.owner, when(d.created_at), d.description)  # fmt: skip
    show(listing, how, cols)


STATES = ["idle", "waiting", "queued", "processing", "complete", "failed", "suspended"]


def status(
    dataset: DatasetArg,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh until the dataset ends (Ctrl-C stops).")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.", min=0.5)] = 2.0,
    breakdown: Annotated[
        bool, typer.Option("--by-site", help="Also per site, and per phase of running tasks.")
    ] = False,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    cols: ColumnsOpt = None,
) -> None:
    """A dataset's progress: its tasks counted per name and state."""
    how = mode(output, as_json)
    with connect.client() as client:
        if not watch:
            _print_status(client.dataset(dataset, breakdown=breakdown), how, cols)
            return
        _watch(lambda: client.dataset(dataset, breakdown=breakdown), how, cols, interval)


def _watch(
    fetch: Callable[[], DatasetStatusView], how: Output, cols: str | None, interval: float
) -> None:
    """Show the status again every ``interval`` seconds until the dataset is complete: in
    place on a terminal (like ``watch``), one after the other in a pipe."""
    while True:
        view = fetch()
        if how is Output.TABLE:
            from frazil.cli.text import console  # noqa: PLC0415

            console().clear()
        if how is not Output.JSON:
            say(f"{when(time.time())}, every {interval:g} s (Ctrl-C stops)")
        _print_status(view, how, cols)
        sys.stdout.flush()
        if view.dataset.status == "complete":
            return
        time.sleep(interval)


def _print_status(view: DatasetStatusView, how: Output, cols: str | None) -> None:
    if how is Output.JSON:
        print_json({**_asdict(view), "progress": view.progress})
        return
    d = view.dataset
    flags = [f for f, on in (("debug", d.debug), ("truncated", d.truncated)) if on]
    say(
        f"dataset {d.id}{f' ({d.alias})' if d.alias else ''}: {d.status}"
        f"{' [' + ', '.join(flags) + ']' if flags else ''}, priority {d.priority:g}, "
        f"config v{d.config_version}, owner {d.owner}"
    )
    say(
        f"jobs: {d.jobs_complete} complete, {d.jobs_failed} failed, {d.jobs_materialized} "
        f"created of {d.jobs_submitted} ({100 * view.progress:.1f}% done)"
    )
    listing = Listing(columns("task*", *(f"{s}#" for s in STATES)))
    for name, counts in view.counts.items():
        listing.add(name, *(counts.get(s, 0) or "" for s in STATES))
    show(listing, how, cols)
    if view.by_site:
        by_site = Listing(columns("site*", *(f"{s}#" for s in STATES[2:])))
        for site, counts in view.by_site.items():
            by_site.add(site, *(counts.get(s, 0) or "" for s in STATES[2:]))
        show(by_site, how)
    if view.by_phase:
        phases = sorted({p for counts in view.by_phase.values() for p in counts})
        by_phase = Listing(columns("processing*", *(f"{p}#" for p in phases)))
        for name, counts in view.by_phase.items():
            by_phase.add(name, *(counts.get(p, 0) or "" for p in phases))
        show(by_phase, how)


def _asdict(value: DatasetStatusView) -> dict[str, Any]:
    return dataclasses.asdict(value)


def jobs_cmd(
    dataset: DatasetArg,
    status: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    every: AllOpt = False,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    cols: ColumnsOpt = None,
) -> None:
    """List a dataset's jobs."""

    def table(rows: list[JobView]) -> Listing:
        listing = Listing(columns("job*#", "status", "tasks done#", "failures#", "seed#",
                                  "changed*"))  # fmt: skip
        for j in rows:
            listing.add(j.index, j.status, f"{j.complete}/{j.tasks}", j.failures, j.seed,
                        when(j.status_changed))  # fmt: skip
        return listing

    how = mode(output, as_json)
    with connect.client() as client:
        print_pages(
            lambda n, skip: client.jobs_page(dataset, status=status, limit=n, offset=skip),
            how, table, limit=limit, offset=offset, every=every, names=cols,
        )  # fmt: skip


def tasks_cmd(
    dataset: DatasetArg,
    status: Annotated[str | None, typer.Option("--status", "-s", help="Only this state.")] = None,
    job: JobOpt = None,
    task: TaskOpt = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    every: AllOpt = False,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    cols: ColumnsOpt = None,
) -> None:
    """List a dataset's tasks."""

    def table(rows: list[TaskView]) -> Listing:
        listing = Listing(columns("id*#", "job#", "task*", "status", "phase", "failures#",
                                  "site", "cpu#", "gpu#", "memory GB#", "disk GB#",
                                  "time h#"))  # fmt: skip
        for t in rows:
            listing.add(t.id, t.job_index, t.name, t.status, t.phase, t.failures, t.site,
                        t.cpu, t.gpu, f"{t.memory:g}", f"{t.disk:g}", f"{t.time:g}")  # fmt: skip
        return listing

    how = mode(output, as_json)
    with connect.client() as client:
        print_pages(
            lambda n, skip: client.tasks_page(
                dataset, status=status, job=job, name=task, limit=n, offset=skip
            ),
            how, table, limit=limit, offset=offset, every=every, names=cols,
        )  # fmt: skip


def stats(
    dataset: DatasetArg,
    task: TaskOpt = None,
    limit: Annotated[int, typer.Option(help="Statistics (names) per page.", min=1)] = 100,
    after: Annotated[
        str | None, typer.Option(help="Start after this statistic (the last one shown).")
    ] = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    cols: ColumnsOpt = None,
) -> None:
    """Statistics of a dataset's attempts, overall (``*``) and per task name, a page of
    names at a time."""
    with connect.client() as client:
        rows = client.stats(dataset, task, limit=limit, after=after)
    how = mode(output, as_json)
    if how is Output.JSON:
        print_json(rows)
        return
    listing = Listing(columns("task*", "statistic*", "unit", "count#", "sum#", "mean#",
                              "stddev#", "min#", "max#"))  # fmt: skip
    for s in rows:
        listing.add(s.task_name, s.name, unit(s.name), s.count, f"{s.total:g}", f"{s.mean:g}",
                    f"{s.stddev:g}", f"{s.minimum:g}", f"{s.maximum:g}")  # fmt: skip
    show(listing, how, cols)
    if len({s.name for s in rows}) == limit:
        import shlex  # noqa: PLC0415

        note(f"more: frazil stats {shlex.quote(dataset)} --after {shlex.quote(rows[-1].name)}")


# -- control ------------------------------------------------------------------------------

_VERBS = {
    "suspend": "Hold tasks (a whole dataset: the dataset too).",
    "resume": "Let suspended tasks run again.",
    "reset": "Send tasks back to waiting (counts a failure: failed tasks get a retry).",
    "hard-reset": "Return tasks and everything downstream to idle with no failures.",
}


def _scope(dataset: str, job: int | None, task: str | None, task_id: int | None) -> str:
    parts = [f"dataset {dataset}"]
    parts += [f"{what} {v}" for what, v in (("job", job), ("task", task), ("task id", task_id))
              if v is not None]  # fmt: skip
    return " ".join(parts)


def _control(verb: str) -> Callable[..., None]:
    def command(
        dataset: DatasetArg,
        job: JobOpt = None,
        task: TaskOpt = None,
        task_id: TaskIdOpt = None,
        reason: ReasonOpt = "",
    ) -> None:
        with connect.client() as client:
            n = client.act(dataset, verb, job=job, task=task, task_id=task_id, reason=reason)
        say(f"{verb}: {n} task(s) in {_scope(dataset, job, task, task_id)}")

    command.__doc__ = _VERBS[verb]
    return command


def set_priority_cmd(
    dataset: DatasetArg,
    priority: Annotated[float, typer.Argument(help=PRIORITY_HELP)],
) -> None:
    """Change a dataset's priority."""
    with connect.client() as client:
        client.set_priority(dataset, priority)
    say(f"dataset {dataset}: priority {priority:g}")


def set_jobs_cmd(
    dataset: DatasetArg,
    jobs: Annotated[int, typer.Argument(help="New number of jobs (only more).", min=0)],
) -> None:
    """Raise a dataset's number of jobs (the new jobs are checked first)."""
    with connect.client() as client:
        done = client.set_jobs(dataset, jobs)
    say(f"dataset {dataset}: {jobs} jobs" + (f"; {done.checked.summary}" if done.checked else ""))


def truncate_cmd(dataset: DatasetArg) -> None:
    """Stop creating jobs: the dataset completes when its existing jobs do."""
    with connect.client() as client:
        client.truncate(dataset)
    say(f"dataset {dataset}: truncated")


def register(app: typer.Typer, show_group: typer.Typer) -> None:
    """Add this module's commands to the application (and to its ``show`` group)."""
    app.command("submit")(submit_cmd)
    app.command()(datasets)
    app.command()(status)
    app.command("jobs")(jobs_cmd)
    app.command("tasks")(tasks_cmd)
    for verb in _VERBS:
        app.command(verb)(_control(verb))
    app.command("set-priority")(set_priority_cmd)
    app.command("set-jobs")(set_jobs_cmd)
    app.command("truncate")(truncate_cmd)
    app.command()(stats)


__all__ = ["register"]
