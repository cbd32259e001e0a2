"""Prefect 3: one flow per workload, tasks on a ThreadPoolTaskRunner of 2 threads, state kept
by a local (ephemeral) Prefect server on SQLite under a fresh ``PREFECT_HOME``.

    .bench/prefect-venv/bin/python benchmarks/runners/prefect_run.py --workload indep:2000

Prefect's server breaks with the FastAPI Frazil uses, so this runs in its own venv
(``prefect`` and ``fastapi<0.150``), which ``benchmarks/compare.py --peers prefect`` creates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common import Token, Workload, build, main, noop

THREADS = 2


class PrefectRun:
    config = f"local server (SQLite), {THREADS} threads"
    version = "?"

    def start(self, workdir: Path) -> None:
        os.environ["PREFECT_HOME"] = str(workdir / "prefect")  # read when prefect is imported
        os.environ.pop("PREFECT_API_URL", None)
        os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true"
        os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # no traffic off this machine
        # its default of 20 s is too short on a shared 2-core machine
        os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
        import prefect  # noqa: PLC0415
        from prefect.cache_policies import NO_CACHE  # noqa: PLC0415
        from prefect.task_runners import ThreadPoolTaskRunner  # noqa: PLC0415

        self.version = prefect.__version__
        # no cache: a task that ran must run again, as in every other system
        step_task = prefect.task(noop, name="noop", cache_policy=NO_CACHE)

        @prefect.flow(name="workload", task_runner=ThreadPoolTaskRunner(max_workers=THREADS))
        def workload(w: Workload, log: str) -> list[Token]:
            futures = build(
                w,
                lambda step, prevs: [
                    step_task.submit(job, step, prev, log) for job, prev in enumerate(prevs)
                ],
            )
            return [f.result() for f in futures]

        self.flow: Any = workload

    def run(self, w: Workload, log: str) -> list[Token]:
        return list(self.flow(w, log))

    def stop(self) -> None:
        pass


if __name__ == "__main__":
    main("prefect", lambda _: PrefectRun())
