"""``frazil run``: the unmonitored mode (paper §3.2): no database, no server.

Every task of every job is resolved here, its spec written beside a batch script that runs a
standalone pilot, and the scripts are submitted with the job's dependencies as batch
dependencies (``afterok`` on Slurm, ``-hold_jid`` on SGE, where a failed pilot exits 100 so
that its dependents stay held). The batch ids are printed; results land in each task's
folder as ``result.json`` and log files. ``--dry-run`` only writes the scripts.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from frazil.batch.base import JobRequest, load_plugin
from frazil.loader import load_config
from frazil.model.dag import build_dag
from frazil.model.resolve import JobInfo, Resolver

out = Console(highlight=False)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def run(
    config: Annotated[Path, typer.Argument(help="Dataset config, YAML or JSON.")],
    jobs: Annotated[int, typer.Option("--jobs", "-n", help="Number of jobs.", min=1)] = 1,
    batch: Annotated[str, typer.Option(help="Batch plugin (slurm, sge, ...).")] = "slurm",
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
) -> None:
    """Submit every task of N jobs straight to a batch system, with their dependencies."""
    cfg = load_config(config)
    root = (directory or Path.cwd() / f"frazil-run-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    plugin = load_plugin(batch, **_pairs(option or [], "--option"))
    system_values = _pairs(system or [], "--system")
    dag, _ = build_dag([t.name for t in cfg.tasks], [t.depends for t in cfg.tasks])
    assert dag is not None  # load_config refused cycles
    fail_code = "100" if batch.split("::")[0] == "sge" else "1"
    table = Table("job", "task", "after", "batch id" if not dry_run else "script")
    for job in range(jobs):
        info = JobInfo(
            dataset=dataset, job=job, jobs_submitted=jobs, dataset_seed=seed, system=system_values
        )
        resolver = Resolver(cfg, info)
        ids: dict[int, str] = {}
        for t in dag.order:
            spec = resolver.task(t).to_dict()
            folder = root / f"job-{job:06d}" / spec["name"]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "spec.json").write_text(json.dumps(spec, indent=2, default=str))
            req = spec["requirements"]
            request = JobRequest(
                name=f"frazil-run-{job}-{spec['name']}"[:128],
                argv=[sys.executable, "-m", "frazil.pilot", "--spec", str(folder / "spec.json"),
                      "--workdir", str(folder / "work"), "--fail-exit-code", fail_code],
                workdir=folder,
                stdout=folder / "pilot.out",
                stderr=folder / "pilot.err",
                cpu=req["cpu"], gpu=req["gpu"], memory=req["memory"], disk=req["disk"],
                walltime=req["time"],
                after=tuple(ids[p] for p in dag.parents[t]) if not dry_run else (),
            )  # fmt: skip
            after = ", ".join(dag.names[p] for p in dag.parents[t]) or "-"
            if dry_run:
                table.add_row(str(job), spec["name"], after, str(plugin.write_script(request)))
                continue
            (ids[t],) = plugin.submit([request])
            table.add_row(str(job), spec["name"], after, ids[t])
    out.print(table)
    out.print(f"{'scripts' if dry_run else 'submitted'}: {root}")
