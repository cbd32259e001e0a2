"""``frazil run``: the unmonitored mode ("The IceProd Framework", §3.2): no database, no server.

Every task of every job is resolved first (an error refuses the run before anything is
submitted), its spec written beside a batch script that runs a standalone pilot. A batch
system that runs DAGs itself gets each job's tasks at once, with the job's dependencies as
batch dependencies (``afterok`` on Slurm, ``-hold_jid`` on SGE, where a failed pilot exits
100 so that its dependents stay held; a DAGMan file on HTCondor), and the batch ids are
printed. On the others (the ``local`` plugin, PBS, LSF) the command itself runs the DAGs:
it submits each task once its parents completed, shows each end, and exits non-zero if a
task did not complete. Results land in each task's folder as ``result.json`` and log files.
``--dry-run`` only writes the scripts.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from frazil.cli.text import console, shown

if TYPE_CHECKING:
    from frazil.batch.base import BatchPlugin, JobRequest
    from frazil.batch.foreground import Outcome


def _out(text: str) -> None:
    console().print(text)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _option(value: str) -> object:
    """A plugin option as its site.toml value would be: a number, true or false, or text."""
    if value in ("true", "false"):
        return value == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def run(
    config: Annotated[Path, typer.Argument(help="Dataset config, YAML or JSON.")],
    jobs: Annotated[int, typer.Option("--jobs", "-n", help="Number of jobs.", min=1)] = 1,
    batch: Annotated[str, typer.Option(help="Batch plugin (slurm, sge, local, ...).")] = "slurm",
    directory: Annotated[Path | None, typer.Option("--dir", help="Where scripts go.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Only write the scripts.")] = False,
    dataset: Annotated[int, typer.Option(help="Dataset id ($args(dataset)).", min=0)] = 0,
    seed: Annotated[int, typer.Option(help="Dataset RNG seed.")] = 0,
    system: Annotated[
        list[str] | None, typer.Option("--system", "-s", help="KEY=VALUE for $system().")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="KEY=VALUE plugin option.")
    ] = None,
    poll_interval: Annotated[
        float,
        typer.Option(help="Seconds between status queries while running DAGs from here.", min=0),
    ] = 5.0,
) -> None:
    """Run every task of N jobs through a batch system, each after the tasks it depends on."""
    # what a run needs, imported when one is asked for (frazil --help stays fast)
    from frazil.batch.base import JobRequest, load_plugin  # noqa: PLC0415
    from frazil.loader import load_config  # noqa: PLC0415
    from frazil.model.dag import build_dag  # noqa: PLC0415
    from frazil.model.resolve import JobInfo, Resolver  # noqa: PLC0415
    from frazil.wire import encode  # noqa: PLC0415

    cfg = load_config(config)
    root = (directory or Path.cwd() / f"frazil-run-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    options = {k: _option(v) for k, v in _pairs(option or [], "--option").items()}
    if batch.partition("::")[0] == "local":
        options.setdefault("state_dir", str(root / "local-batch"))
    plugin = load_plugin(batch, **options)
    system_values = _pairs(system or [], "--system")
    dag, _ = build_dag([t.name for t in cfg.tasks], [t.depends for t in cfg.tasks])
    assert dag is not None  # load_config refused cycles
    fail_code = "100" if batch.split("::")[0] == "sge" else "1"
    requests: list[JobRequest] = []
    parents: list[list[int]] = []  # indexes into requests, all earlier
    rows: list[tuple[int, str, str]] = []  # job, task, the tasks it runs after
    for job in range(jobs):
        info = JobInfo(
            dataset=dataset, job=job, jobs_submitted=jobs, dataset_seed=seed, system=system_values
        )
        resolver = Resolver(cfg, info)
        where: dict[int, int] = {}
        for t in dag.order:
            spec = resolver.task(t)
            folder = root / f"job-{job:06d}" / spec.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "spec.json").write_text(json.dumps(encode(spec), indent=2, default=str))
            req = spec.requirements
            where[t] = len(requests)
            requests.append(JobRequest(
                name=f"frazil-run-{job}-{spec.name}"[:128],
                argv=[sys.executable, "-m", "frazil.pilot", "--spec", str(folder / "spec.json"),
                      "--workdir", str(folder / "work"), "--fail-exit-code", fail_code],
                workdir=folder,
                stdout=folder / "pilot.out",
                stderr=folder / "pilot.err",
                cpu=req.cpu, gpu=req.gpu, memory=req.memory, disk=req.disk, walltime=req.time,
            ))  # fmt: skip
            parents.append([where[p] for p in dag.parents[t]])
            rows.append((job, spec.name, ", ".join(dag.names[p] for p in dag.parents[t])))
    if dry_run:
        _table("script", rows, [str(plugin.write_script(r)) for r in requests])
        _out(f"scripts: {shown(root)}")
    elif plugin.runs_dags:
        _table("batch id", rows, _submit_dags(plugin, requests, parents, len(dag.order)))
        _out(f"submitted: {shown(root)}")
    else:
        _run_here(plugin, batch, requests, parents, rows, root, poll_interval)


def _table(last: str, rows: list[tuple[int, str, str]], values: list[str]) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table("job", "task", "after", last)
    for (job, name, after), value in zip(rows, values, strict=True):
        table.add_row(str(job), shown(name), shown(after or "-"), shown(value))
    console().print(table)


def _submit_dags(
    plugin: BatchPlugin, requests: list[JobRequest], parents: list[list[int]], per_job: int
) -> list[str]:
    """Each job's tasks in one ``submit_dag``: the batch system holds each task until its
    parents completed."""
    ids: list[str] = []
    for start in range(0, len(requests), per_job):
        mine = [[p - start for p in ps] for ps in parents[start : start + per_job]]
        ids += plugin.submit_dag(requests[start : start + per_job], mine)
    return ids


def _run_here(
    plugin: BatchPlugin, batch: str, requests: list[JobRequest], parents: list[list[int]],
    rows: list[tuple[int, str, str]], root: Path, poll_interval: float,
) -> None:  # fmt: skip
    """Run the DAGs from this process (the batch system cannot hold a task until others
    end); exit 1 unless every task completed."""
    from frazil.batch.base import BatchState  # noqa: PLC0415
    from frazil.batch.foreground import run_dags  # noqa: PLC0415

    _out(
        f"{shown(batch)} runs no DAGs itself: running them from here, each task once its "
        "parents completed (Ctrl-C cancels what runs)"
    )

    def describe(outcome: Outcome) -> str:
        if outcome.state is None:
            blocked = outcome.blocked_by
            return f"not run: {rows[blocked][1] if blocked is not None else '?'} did not complete"
        if outcome.state is BatchState.PENDING:
            return f"submitted ({outcome.batch_id})"
        text = f"{outcome.state.value} ({outcome.batch_id})"
        if outcome.exit_code not in (None, 0):
            text += f", exit code {outcome.exit_code}"
        return text + (f": {outcome.reason}" if outcome.reason and not outcome.completed else "")

    def report(i: int, outcome: Outcome) -> None:
        job, name, _ = rows[i]
        _out(f"job {job} {shown(name)}: {shown(describe(outcome))}")

    outcomes = run_dags(plugin, requests, parents, poll_interval=poll_interval, report=report)
    _table("outcome", rows, [describe(o) for o in outcomes])
    done = sum(o.completed for o in outcomes)
    _out(f"{done} of {len(outcomes)} tasks completed; results in {shown(root)}")
    if done < len(outcomes):
        raise typer.Exit(1)
