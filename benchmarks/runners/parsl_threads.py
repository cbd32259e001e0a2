"""Parsl's ThreadPoolExecutor with 2 threads: Parsl's scheduler without a process boundary.

python benchmarks/runners/parsl_threads.py --workload indep:2000
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import main
from parsl.executors import ThreadPoolExecutor
from parsl_htex import ParslHtex

THREADS = 2


class ParslThreads(ParslHtex):
    config = f"{THREADS} threads"

    def executor(self, workdir: Path) -> Any:
        return ThreadPoolExecutor(label="bench", max_threads=THREADS)


if __name__ == "__main__":
    main("parsl-threads", lambda _: ParslThreads())
