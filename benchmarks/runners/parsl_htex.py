"""Parsl's HighThroughputExecutor: an interchange process and one pool of 2 worker processes.

    python benchmarks/runners/parsl_htex.py --workload indep:2000

HTEX starts ``interchange.py`` from the venv's ``bin/``, so that directory is put on PATH.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import parsl
from common import Token, Workload, build, main, noop
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

WORKERS = 2


class ParslHtex:
    """Parsl with one executor; subclasses choose another (``executor``)."""

    config = f"HTEX, {WORKERS} workers"
    version = parsl.__version__

    def __init__(self) -> None:
        self.dfk: Any = None

    def executor(self, workdir: Path) -> Any:
        bindir = str(Path(sys.executable).parent)
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
        return HighThroughputExecutor(
            label="bench",
            max_workers_per_node=WORKERS,
            address="127.0.0.1",
            provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1),
            working_dir=str(workdir / "work"),
        )

    def start(self, workdir: Path) -> None:
        executor = self.executor(workdir)
        config = Config(executors=[executor], run_dir=str(workdir / "runinfo"), strategy="none")
        self.dfk = parsl.load(config)
        self.app = parsl.python_app(noop, executors=["bench"])

    def run(self, w: Workload, log: str) -> list[Token]:
        futures = build(
            w,
            lambda step, prevs: [self.app(job, step, prev, log) for job, prev in enumerate(prevs)],
        )
        return [f.result() for f in futures]

    def stop(self) -> None:
        if self.dfk is not None:
            self.dfk.cleanup()
            parsl.clear()


if __name__ == "__main__":
    main("parsl-htex", lambda _: ParslHtex())
