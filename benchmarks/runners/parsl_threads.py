"""Parsl's ThreadPoolExecutor with 2 threads: Parsl's scheduler without a process boundary.

python benchmarks/runners/parsl_threads.py --workload indep:2000
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import parsl
from common import Token, Workload, build, main, noop
from parsl.config import Config
from parsl.executors import ThreadPoolExecutor

THREADS = 2


class ParslThreads:
    config = f"{THREADS} threads"
    version = parsl.__version__

    def __init__(self) -> None:
        self.dfk: Any = None

    def start(self, workdir: Path) -> None:
        executor = ThreadPoolExecutor(label="threads", max_threads=THREADS)
        config = Config(executors=[executor], run_dir=str(workdir / "runinfo"), strategy="none")
        self.dfk = parsl.load(config)
        self.app = parsl.python_app(noop, executors=["threads"])

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
    main("parsl-threads", lambda _: ParslThreads())
