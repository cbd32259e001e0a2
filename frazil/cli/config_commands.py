"""Commands that work on a dataset config without a server: validate, show, schema, expr."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from frazil.cli.text import console, plain, shown
from frazil.errors import ConfigError, ExpressionError, Problem

if TYPE_CHECKING:
    from rich.text import Text

    from frazil.loader import Inspection
    from frazil.model.expressions import Evaluator
    from frazil.model.resolve import JobInfo, ResolvedTask
    from frazil.model.spec import DatasetConfig

# The config model, the loader and Rich's tables are imported by the commands that use them,
# so that ``frazil --help`` does not pay for them.


class _Lazy:
    """A console made at its first use."""

    def __init__(self, stderr: bool) -> None:
        self.stderr = stderr

    def print(self, *args: Any, **kwargs: Any) -> None:
        console(stderr=self.stderr).print(*args, **kwargs)


out = _Lazy(stderr=False)
err = _Lazy(stderr=True)

ConfigArg = Annotated[Path, typer.Argument(help="Dataset config, YAML or JSON.")]
JobOpt = Annotated[int, typer.Option("--job", "-j", help="Job index.", min=0)]
DatasetOpt = Annotated[int, typer.Option(help="Dataset id ($args(dataset)).", min=0)]
JobsOpt = Annotated[int, typer.Option(help="Jobs in the dataset ($args(jobs_submitted)).", min=1)]
SeedOpt = Annotated[int, typer.Option(help="Dataset RNG seed.")]


def _problem_line(source: str, p: Problem) -> str:
    where = f"{source}:{p.line}" if p.line is not None else source
    path = f" {p.path}:" if p.path else ""
    return f"{where}:{path} {p.message}"


def _print_problems(inspection: Inspection) -> None:
    for p in inspection.report.errors:
        err.print(f"[red]error[/red] {shown(_problem_line(inspection.source, p))}")
    for p in inspection.report.warnings:
        err.print(f"[yellow]warning[/yellow] {shown(_problem_line(inspection.source, p))}")


def validate(config: ConfigArg, job: JobOpt = 0) -> None:
    """Check a dataset config: shape, names, dependencies and every expression.

    Each problem is printed as FILE:LINE: PATH: MESSAGE. Exits 1 if there is any error.
    A relative path that a pilot must read (a module's src) and that lies here, beside the
    config or in the current directory, is a warning: the site will not see it.
    """
    from frazil.loader import inspect_file  # noqa: PLC0415

    inspection = inspect_file(config, job=job, here=(config.parent, Path.cwd()))
    _print_problems(inspection)
    report = inspection.report
    if not report.ok:
        err.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
        raise typer.Exit(1)
    out.print(
        f"[green]valid[/green]: {shown(str(config))}: {report.tasks} tasks, "
        f"{report.modules} modules, {report.expressions} expressions checked for job {job}"
        + (f", {len(report.warnings)} warning(s)" if report.warnings else ""),
        soft_wrap=True,
    )


def _load(config: Path) -> DatasetConfig:
    from frazil.loader import load_config  # noqa: PLC0415

    try:
        return load_config(config)
    except ConfigError as exc:
        for p in exc.problems:
            err.print(f"[red]error[/red] {shown(_problem_line(str(config), p))}")
        raise typer.Exit(1) from exc


def _requirements(task: ResolvedTask) -> str:
    r = task.requirements
    parts = [f"cpu {r.cpu}", f"gpu {r.gpu}", f"mem {r.memory:g} GB", f"disk {r.disk:g} GB"]
    parts.append(f"time {r.time:g} h")
    if r.os:
        parts.append("os " + "|".join(r.os))
    if r.site:
        parts.append("site " + "|".join(r.site))
    parts += [f"{k} {v}" for k, v in r.extra.items()]
    return ", ".join(parts)


def show(
    config: ConfigArg,
    job: JobOpt = 0,
    dataset: DatasetOpt = 0,
    jobs: JobsOpt = 1,
    seed: SeedOpt = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the resolved tasks as JSON.")
    ] = False,
) -> None:
    """Show one job of a dataset: its task DAG, requirements, files and commands."""
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415
    from rich.tree import Tree  # noqa: PLC0415

    from frazil.model.dag import build_dag  # noqa: PLC0415
    from frazil.model.resolve import JobInfo, resolve_job  # noqa: PLC0415
    from frazil.wire import encode  # noqa: PLC0415

    cfg = _load(config)
    info = JobInfo(
        dataset=dataset,
        job=job,
        jobs_submitted=max(jobs, job + 1),
        dataset_seed=seed,
        defer_site_values=True,  # a site supplies $system and $environ values at run time
    )
    try:
        tasks = resolve_job(cfg, info)
    except (ExpressionError, ConfigError) as exc:
        err.print(f"[red]error[/red] {shown(str(exc))}")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps([encode(t) for t in tasks], indent=2))
        return
    dag, _ = build_dag([t.name for t in cfg.tasks], [t.depends for t in cfg.tasks])
    assert dag is not None
    title = f"dataset {dataset} job {job} of {info.jobs_submitted}"
    out.print(f"[bold]{shown(cfg.description or str(config))}[/bold]")
    table = Table(title=title, title_justify="left")
    table.add_column("task")
    table.add_column("after")
    table.add_column("needs")
    for task in tasks:
        table.add_row(
            shown(task.name), shown(", ".join(task.depends) or "-"), shown(_requirements(task))
        )
    out.print(table)
    for task in tasks:
        tree = Tree(Text(plain(task.name), style="bold"))
        for d in task.data:
            arrow = {"input": "<-", "output": "->", "both": "<->"}[str(d.movement)]
            tree.add(_fold(f"{d.local} {arrow} {d.remote} ({d.type})"))
        for tray in task.trays:
            env = f" [{tray.env[0]} {tray.env[1]}]" if tray.env else ""
            node = tree.add(_fold(f"tray {tray.name} #{tray.iteration}{env}"))
            for m in tray.modules:
                what = m.src or f"{m.class_} ({m.url})"
                node.add(_fold(f"{m.name}: {what} {shlex.join(m.argv)}"))
        out.print(tree)


def _fold(text: str) -> Text:
    from rich.text import Text  # noqa: PLC0415

    return Text(plain(text), overflow="fold")


def schema() -> None:
    """Print the JSON Schema of dataset configs (for editors and other tools)."""
    from frazil.model.spec import DatasetConfig  # noqa: PLC0415

    typer.echo(json.dumps(DatasetConfig.model_json_schema(by_alias=True), indent=2))


def _print_value(value: Any) -> None:
    typer.echo(value if isinstance(value, str) else json.dumps(value))


def expr(
    expression: Annotated[str, typer.Argument(help="The text to evaluate, e.g. '$args(job)'.")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Dataset config to evaluate in.")
    ] = None,
    job: JobOpt = 0,
    task: Annotated[str | None, typer.Option(help="Evaluate in this task's scope.")] = None,
    tray: Annotated[int | None, typer.Option(help="...and this tray's (index).", min=0)] = None,
    module: Annotated[int | None, typer.Option(help="...and this module's (index).", min=0)] = None,
    iteration: Annotated[int, typer.Option("--iter", help="Tray iteration.", min=0)] = 0,
    dataset: DatasetOpt = 0,
    jobs: JobsOpt = 1,
    seed: SeedOpt = 0,
    lenient: Annotated[bool, typer.Option(help="Keep unresolved references as text.")] = False,
) -> None:
    """Print the value EXPRESSION takes for one job (and task, tray, module)."""
    from frazil.model.expressions import Context, Evaluator  # noqa: PLC0415
    from frazil.model.resolve import JobInfo  # noqa: PLC0415
    from frazil.model.rng import job_seed  # noqa: PLC0415

    info = JobInfo(
        dataset=dataset,
        job=job,
        jobs_submitted=max(jobs, job + 1),
        dataset_seed=seed,
        environ=dict(os.environ),
        strict=not lenient,
    )
    try:
        if config is None:
            if task is not None or tray is not None or module is not None:
                raise typer.BadParameter("--task, --tray and --module need --config")
            options = {
                "dataset": dataset,
                "job": job,
                "jobs_submitted": info.jobs_submitted,
                "seed": job_seed(seed, job),
            }
            context = Context(
                options=options, environ=info.environ, seed=job_seed(seed, job), strict=info.strict
            )
            ev = Evaluator(context)
        else:
            ev = _scoped_evaluator(_load(config), info, task, tray, module, iteration)
        value = ev.evaluate(expression)
    except ExpressionError as exc:
        err.print(f"[red]error[/red] {shown(str(exc))}")
        raise typer.Exit(1) from exc
    _print_value(value)


def _scoped_evaluator(
    cfg: DatasetConfig,
    info: JobInfo,
    task: str | None,
    tray: int | None,
    module: int | None,
    iteration: int,
) -> Evaluator:
    from frazil.model.resolve import Resolver  # noqa: PLC0415

    resolver = Resolver(cfg, info)
    if task is None:
        if tray is not None or module is not None:
            raise typer.BadParameter("--tray and --module need --task")
        return resolver.dataset
    try:
        t = cfg.task_index(task)
    except KeyError:
        names = ", ".join(x.name for x in cfg.tasks)
        raise typer.BadParameter(f"no task {task!r} (tasks: {names})") from None
    if tray is None:
        if module is not None:
            raise typer.BadParameter("--module needs --tray")
        return resolver.task_evaluator(t)
    if tray >= len(cfg.tasks[t].trays):
        raise typer.BadParameter(f"task {task!r} has {len(cfg.tasks[t].trays)} tray(s)")
    if module is None:
        return resolver.tray_evaluator(t, tray, iteration)
    if module >= len(cfg.tasks[t].trays[tray].modules):
        raise typer.BadParameter(
            f"tray {tray} has {len(cfg.tasks[t].trays[tray].modules)} module(s)"
        )
    return resolver.module_evaluator(t, tray, module, iteration)


def register(app: typer.Typer, show_group: typer.Typer) -> None:
    """Add this module's commands to the application (and to its ``show`` group)."""
    app.command()(validate)
    show_group.command("config")(show)
    app.command()(schema)
    app.command()(expr)
