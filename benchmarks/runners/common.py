"""What every runner shares: its command line, its timing, and its one line of JSON.

A runner is ``python benchmarks/runners/<name>.py --workload W [--backend B]``: it runs one
workload once in its own process and prints ONE JSON line on stdout::

    {"system": ..., "workload": ..., "startup_s": ..., "wall_s": ..., "tasks": N,
     "tasks_per_s": ..., "ms_per_step": ..., "config": "2 workers", "version": ...}

``startup_s`` runs from nothing to two warm-up tasks done (so the workers are up);
``wall_s`` from the first submission to the last result, start-up excluded; ``ms_per_step``
is ``wall_s`` per task of the longest chain (``null`` for ``indep``). Results are checked
(:func:`workloads.check`) outside the timed part; a failed check or run exits 1 with its
reason on stderr. Anything the system itself prints to stdout goes to stderr instead.

A runner implements :class:`Engine` and calls :func:`main`; :func:`build` submits a workload
one layer of steps at a time through the system's own submit-with-futures call.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

BENCHMARKS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCHMARKS))

from workloads import Token, Workload, check, noop, parse  # noqa: E402

__all__ = ["Engine", "Token", "Workload", "build", "main", "noop"]

F = TypeVar("F")
FAILED = "runner failed: "
"""Starts the line of stderr that gives the reason for a nonzero exit."""


class Engine(Protocol):
    """One system, started once, running workloads."""

    config: str
    """A short description for the table: ``2 workers``."""
    version: str

    def start(self, workdir: Path) -> None:
        """Start the system (its files go under ``workdir``)."""

    def run(self, w: Workload, log: str) -> list[Token]:
        """Run every task of ``w`` (``noop(job, step, prev, log)``) and return their results."""

    def stop(self) -> None:
        """Shut the system down; called once, also after a failure."""


def build(w: Workload, layer: Callable[[int, list[F | None]], Sequence[F]]) -> list[F]:
    """Submit ``w`` step by step: ``layer(step, prevs)`` submits one task per job, task ``j``
    depending on ``prevs[j]`` (``None`` at step 0), and returns their futures."""
    prevs: list[F | None] = [None] * w.jobs
    futures: list[F] = []
    for step in range(w.length):
        submitted = list(layer(step, prevs))
        futures += submitted
        prevs = list(submitted)
    return futures


def measure(engine: Engine, w: Workload, workdir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    engine.start(workdir)
    warm = engine.run(Workload("indep", 2, 1), log="")
    if sorted(map(tuple, warm)) != [(0, 0), (1, 0)]:
        raise ValueError(f"warm-up returned {warm!r}")
    startup = time.perf_counter() - t0
    log = workdir / "tasks.log"
    t0 = time.perf_counter()
    results = engine.run(w, str(log))
    wall = time.perf_counter() - t0
    check(w, results, log)
    return {
        "startup_s": startup,
        "wall_s": wall,
        "tasks": w.tasks,
        "tasks_per_s": w.tasks / wall,
        "ms_per_step": None if w.kind == "indep" else wall / w.depth * 1000,
    }


def main(system: str, make: Callable[[str | None], Engine], backends: Sequence[str] = ()) -> None:
    """Parse the command line, run the workload once with ``make(backend)``, print the JSON."""
    parser = argparse.ArgumentParser(description=f"Run one workload on {system}.")
    parser.add_argument("--workload", required=True, help="indep:N, dag:JxT or chain:N")
    if backends:
        parser.add_argument("--backend", choices=backends, default=backends[0])
    args = parser.parse_args()
    try:
        w = parse(args.workload)
    except ValueError as exc:
        parser.error(str(exc))
    # the workers of process-based systems import workloads.noop by name
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(BENCHMARKS), *([path] if path else [])])
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the system's own prints (and its children's) go to stderr
    engine = make(getattr(args, "backend", None))
    try:
        with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as tmp:
            try:
                figures = measure(engine, w, Path(tmp))
            finally:
                engine.stop()
    except Exception as exc:
        traceback.print_exc()
        print(f"{FAILED}{system} {w.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    record = {"system": system, "workload": w.name, **figures}
    record |= {"config": engine.config, "version": engine.version}
    out.write(json.dumps(record) + "\n")
    out.flush()
