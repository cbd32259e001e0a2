"""Dask distributed: LocalCluster(n_workers=2, threads_per_worker=1), tasks by ``Client.map``.

python benchmarks/runners/dask_distributed.py --workload indep:2000
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

from common import Token, Workload, build, main, noop
from distributed import Client, LocalCluster

WORKERS = 2


class DaskDistributed:
    config = f"LocalCluster, {WORKERS} workers x 1 thread"
    version = version("distributed")

    def __init__(self) -> None:
        self.cluster: Any = None
        self.client: Any = None
        self.runs = 0

    def start(self, workdir: Path) -> None:
        self.cluster = LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=str(workdir),
        )
        self.client = Client(self.cluster)
        self.client.wait_for_workers(WORKERS)

    def run(self, w: Workload, log: str) -> list[Token]:
        self.runs += 1
        run = self.runs

        def layer(step: int, prevs: list[Any]) -> list[Any]:
            jobs = range(len(prevs))
            keys = [f"noop-{run}-{job}-{step}" for job in jobs]
            return list(
                self.client.map(
                    noop, jobs, [step] * len(prevs), prevs, [log] * len(prevs), key=keys, pure=False
                )
            )

        return list(self.client.gather(build(w, layer)))

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


if __name__ == "__main__":
    main("dask", lambda _: DaskDistributed())
