"""Commands on the production database: init, submit, list, inspect and control datasets.

They talk to the database named by Frazil's settings (``FRAZIL_DB_URL``, or SQLite in
``$FRAZIL_HOME``). Tables by default, ``--json`` for scripts.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import shlex
import stat
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from frazil.cli.text import console, shown
from frazil.config import load_settings
from frazil.model.limits import PRIORITY, SEED
from frazil.services import queries
from frazil.services.control import Scope, hard_reset, reset, resume, set_priority, suspend
from frazil.services.materialize import materialize_step
from frazil.services.stats import MAX_PAGE, PAGE, dataset_stats
from frazil.services.submit import set_jobs, submit_dataset, truncate
from frazil.services.validation import ConfigText
from frazil.store import Database

out = console()

DatasetArg = Annotated[str, typer.Argument(help="Dataset id or alias.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
JobOpt = Annotated[int | None, typer.Option("--job", "-j", help="Only this job.", min=0)]
TaskOpt = Annotated[str | None, typer.Option("--task", "-t", help="Only tasks with this name.")]
TaskIdOpt = Annotated[int | None, typer.Option("--task-id", help="Only the task with this id.")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the audit trail).")]
LimitOpt = Annotated[int, typer.Option(help="At most this many rows.", min=1)]
OffsetOpt = Annotated[int, typer.Option(help="Skip this many rows.", min=0)]


def actor() -> str:
    """Who is acting, for the audit trail."""
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


def open_db(*, migrate: bool = False) -> Database:
    """The configured database; it must be migrated unless ``migrate`` is set."""
    settings = load_settings()
    db = Database(settings.db_url, timeouts=settings.database)
    if migrate:
        db.migrate()
    else:
        db.check_schema()
    return db


def _json(value: Any) -> None:
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {k: plain(x) for k, x in dataclasses.asdict(v).items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    typer.echo(json.dumps(plain(value), indent=2, default=str))


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def init() -> None:
    """Create the database, or migrate it to this version of Frazil."""
    home = load_settings().home
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = open_db(migrate=True)
    for path, mode in [(home, 0o700), *((p, 0o600) for p in db.sqlite_files())]:
        _make_private(path, mode)
    out.print(f"database ready: {shown(repr(db.url))} (schema {db.current_revision()})")


def _make_private(path: Path, mode: int) -> None:
    """Take away what group and others may do with ``path`` (Frazil's home: 0700, its
    database: 0600), saying so when it was looser."""
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if current & 0o077:
        os.chmod(path, mode)
        out.print(f"{path} was readable by others ({current:04o}): now {mode:04o}")


def submit_cmd(
    config: Annotated[Path, typer.Argument(help="Dataset config, YAML or JSON.")],
    jobs: Annotated[int, typer.Option("--jobs", "-n", help="Number of jobs.", min=0)] = 1,
    name: Annotated[str | None, typer.Option("--name", help="A unique alias.")] = None,
    priority: Annotated[
        float, typer.Option(help="Weight in the fair share.", min=PRIORITY.low, max=PRIORITY.high)
    ] = 1.0,
    seed: Annotated[
        int | None,
        typer.Option(help="Dataset RNG seed (default: its id).", min=SEED.low, max=SEED.high),
    ] = None,
    group: Annotated[str, typer.Option(help="Owning group.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Submit a dataset: check it, store it, and create its jobs."""
    db = open_db()
    settings = load_settings()
    done = submit_dataset(
        db, ConfigText.read(config), jobs=jobs, now=time.time(), actor=actor(),
        owner=actor().removeprefix("user:"), group=group, alias=name, priority=priority,
        seed=seed, limits=settings.validation, quotas=settings.quota,
    )  # fmt: skip
    if as_json:
        _json({"dataset": done.id, "checked": done.jobs})
        return
    view = queries.dataset_status(db, done.id).dataset
    out.print(
        f"submitted dataset {done.id}{f' ({shown(name)})' if name else ''}: {jobs} jobs of "
        f"{view.tasks_per_job} tasks, {view.jobs_materialized} created now; "
        f"{done.jobs.describe()}"
    )


def materialize(
    max_jobs: Annotated[int, typer.Option(help="Stop after this many jobs.", min=1)] = 10**9,
) -> None:
    """Create the jobs that submitted datasets still lack (the server does this itself)."""
    db = open_db()
    made = 0
    while made < max_jobs:
        n = materialize_step(db, time.time(), max_jobs=min(max_jobs - made, 50_000))
        if n == 0:
            break
        made += n
    out.print(f"created {made} jobs")


def datasets(
    status: Annotated[str | None, typer.Option(help="Only datasets in this state.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List datasets."""
    rows = queries.list_datasets(open_db(), status=status)
    if as_json:
        _json(rows)
        return
    table = Table("id", "alias", "status", "jobs done", "priority", "owner", "description")
    for d in rows:
        table.add_row(
            str(d.id), shown(d.alias or ""), d.status, f"{d.jobs_complete}/{d.jobs_submitted}",
            f"{d.priority:g}", shown(d.owner), shown(d.description[:60]),
        )  # fmt: skip
    out.print(table)


def status(dataset: DatasetArg, as_json: JsonOpt = False) -> None:
    """A dataset's progress: its tasks counted per name and state."""
    view = queries.dataset_status(open_db(), dataset)
    if as_json:
        _json({**dataclasses.asdict(view), "progress": view.progress})
        return
    d = view.dataset
    flags = [f for f, on in (("debug", d.debug), ("truncated", d.truncated)) if on]
    out.print(
        f"[bold]dataset {d.id}[/bold]{f' ({shown(d.alias)})' if d.alias else ''}: {d.status}"
        f"{shown(' [' + ', '.join(flags) + ']') if flags else ''}, priority {d.priority:g}, "
        f"config v{d.config_version}"
    )
    out.print(
        f"jobs: {d.jobs_complete} complete, {d.jobs_failed} failed, {d.jobs_materialized} "
        f"created of {d.jobs_submitted} ({100 * view.progress:.1f}% done)"
    )
    states = ["idle", "waiting", "queued", "processing", "complete", "failed", "suspended"]
    table = Table("task", *states)
    for name, counts in view.counts.items():
        table.add_row(shown(name), *(str(counts.get(s, 0) or "") for s in states))
    out.print(table)


def jobs_cmd(
    dataset: DatasetArg,
    status: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """List a dataset's jobs."""
    rows = queries.list_jobs(open_db(), dataset, status=status, limit=limit, offset=offset)
    if as_json:
        _json(rows)
        return
    table = Table("job", "status", "tasks done", "failures", "seed", "changed")
    for j in rows:
        table.add_row(
            str(j.index), j.status, f"{j.complete}/{j.tasks}", str(j.failures), str(j.seed),
            _when(j.status_changed),
        )  # fmt: skip
    out.print(table)


def tasks_cmd(
    dataset: DatasetArg,
    status: Annotated[str | None, typer.Option("--status", "-s", help="Only this state.")] = None,
    job: JobOpt = None,
    task: TaskOpt = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """List a dataset's tasks."""
    rows = queries.list_tasks(
        open_db(), dataset, status=status, job=job, name=task, limit=limit, offset=offset
    )
    if as_json:
        _json(rows)
        return
    table = Table("id", "job", "task", "status", "failures", "site", "needs")
    for t in rows:
        needs = f"cpu {t.cpu} gpu {t.gpu} mem {t.memory:g} disk {t.disk:g} time {t.time:g}"
        table.add_row(
            str(t.id),
            str(t.job_index),
            shown(t.name),
            t.status,
            str(t.failures),
            shown(t.site or ""),
            needs,
        )
    out.print(table)


def show_task(
    task_id: Annotated[int, typer.Argument(help="Task id.")], as_json: JsonOpt = False
) -> None:
    """A task with its attempts, errors and statistics."""
    detail = queries.task_detail(open_db(), task_id)
    if as_json:
        _json(detail)
        return
    t = detail.task
    out.print(
        f"[bold]task {t.id}[/bold]: dataset {t.dataset_id} job {t.job_index} {shown(t.name)} — "
        f"{t.status}{f' ({t.phase})' if t.phase else ''}, {t.failures} failure(s)"
    )
    out.print(f"after: {shown(', '.join(detail.depends_on) or '-')}")
    out.print(
        f"needs: cpu {t.cpu}, gpu {t.gpu}, memory {t.memory:g} GB, disk {t.disk:g} GB, "
        f"time {t.time:g} h"
    )
    table = Table("#", "site", "host", "batch id", "outcome", "claimed", "ended", "exit", "stats")
    for a in detail.attempts:
        stats = ", ".join(f"{k}={v:g}" for k, v in sorted(a.stats.items()))
        table.add_row(
            str(a.number), shown(a.site), shown(a.host or ""), shown(a.batch_id or ""), a.outcome,
            _when(a.claimed_at), _when(a.ended_at),
            "" if a.exit_code is None else str(a.exit_code), shown(stats),
        )  # fmt: skip
    out.print(table)
    for a in detail.attempts:
        if a.error:
            out.print(f"[red]attempt {a.number}:[/red] {shown(a.error)}")


def _control(verb: str, fn: Any) -> Any:
    def command(
        dataset: DatasetArg,
        job: JobOpt = None,
        task: TaskOpt = None,
        task_id: TaskIdOpt = None,
        reason: ReasonOpt = "",
    ) -> None:
        scope = Scope(dataset, job=job, task=task, task_id=task_id)
        n = fn(open_db(), scope, now=time.time(), actor=actor(), reason=reason)
        out.print(f"{verb}: {n} task(s) in {shown(scope.describe())}")

    command.__doc__ = {
        "suspend": "Hold tasks (a whole dataset: the dataset too).",
        "resume": "Let suspended tasks run again.",
        "reset": "Send tasks back to waiting (counts a failure: failed tasks get a retry).",
        "hard-reset": "Return tasks and everything downstream to idle with no failures.",
    }[verb]
    return command


def set_priority_cmd(
    dataset: DatasetArg,
    priority: Annotated[
        float,
        typer.Argument(help="New weight (0: only leftovers).", min=PRIORITY.low, max=PRIORITY.high),
    ],
) -> None:
    """Change a dataset's priority."""
    set_priority(open_db(), dataset, priority, now=time.time(), actor=actor())
    out.print(f"dataset {shown(dataset)}: priority {priority:g}")


def set_jobs_cmd(
    dataset: DatasetArg,
    jobs: Annotated[int, typer.Argument(help="New number of jobs (only more).", min=0)],
) -> None:
    """Raise a dataset's number of jobs (the new jobs are checked first)."""
    settings = load_settings()
    checked = set_jobs(
        open_db(), dataset, jobs, now=time.time(), actor=actor(), limits=settings.validation,
        quotas=settings.quota,
    )  # fmt: skip
    out.print(
        f"dataset {shown(dataset)}: {jobs} jobs" + (f"; {checked.describe()}" if checked else "")
    )


def truncate_cmd(dataset: DatasetArg) -> None:
    """Stop creating jobs: the dataset completes when its existing jobs do."""
    truncate(open_db(), dataset, now=time.time(), actor=actor())
    out.print(f"dataset {shown(dataset)}: truncated")


def stats(
    dataset: DatasetArg,
    task: TaskOpt = None,
    as_json: JsonOpt = False,
    limit: Annotated[
        int, typer.Option(help="Statistics (names) per page.", min=1, max=MAX_PAGE)
    ] = PAGE,
    after: Annotated[
        str | None, typer.Option(help="Start after this statistic (the last one shown).")
    ] = None,
) -> None:
    """Statistics of a dataset's attempts, overall (``*``) and per task name, a page of
    names at a time."""
    rows = dataset_stats(open_db(), dataset, task_name=task, limit=limit, after=after)
    if as_json:
        _json(rows)
        return
    table = Table("task", "statistic", "count", "sum", "mean", "stddev", "min", "max")
    for s in rows:
        table.add_row(
            shown(s.task_name), shown(s.name), str(s.count), f"{s.total:g}", f"{s.mean:g}",
            f"{s.stddev:g}", f"{s.minimum:g}", f"{s.maximum:g}",
        )  # fmt: skip
    out.print(table)
    if len({s.name for s in rows}) == limit:
        last = shlex.quote(rows[-1].name)
        out.print(f"more: frazil stats {shlex.quote(dataset)} --after {last}", markup=False)


def register(app: typer.Typer, show: typer.Typer) -> None:
    """Add this module's commands to the application (and to its ``show`` group)."""
    app.command()(init)
    app.command("submit")(submit_cmd)
    app.command()(materialize)
    app.command()(datasets)
    app.command()(status)
    app.command("jobs")(jobs_cmd)
    app.command("tasks")(tasks_cmd)
    for verb, fn in (
        ("suspend", suspend),
        ("resume", resume),
        ("reset", reset),
        ("hard-reset", hard_reset),
    ):
        app.command(verb)(_control(verb, fn))
    app.command("set-priority")(set_priority_cmd)
    app.command("set-jobs")(set_jobs_cmd)
    app.command("truncate")(truncate_cmd)
    app.command()(stats)
    show.command("task")(show_task)
