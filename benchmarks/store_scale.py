"""Scale of the production database: materialize 10^6 tasks, then claim them concurrently.

    python benchmarks/store_scale.py [--backend sqlite postgres mariadb] [--jobs 200000]
                                     [--claimers 4] [--batch 1000] [--repeat 1]

For each backend: submit a 5-task DAG dataset of ``--jobs`` jobs and time its
materialization in a separate process (its peak RSS is reported); submit a second dataset of
the same size whose 5 tasks per job are independent (so that every task is ready), then let
``--claimers`` processes claim its tasks in batches of ``--batch`` at the same moment until
none is left, and count tasks handed out twice (there must be none).

PostgreSQL and MariaDB use a database called ``frazil_bench`` that this script (re)creates
on the servers named by ``FRAZIL_BENCH_POSTGRES_URL`` / ``FRAZIL_BENCH_MARIADB_URL``
(default: the local servers, user root). Results are printed as a table and written as JSON
to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from databases import fresh, own_peak_mb, result_of
from sqlalchemy import func, select

from frazil.model.records import SiteResources
from frazil.model.spec import DatasetConfig
from frazil.services.claim import claim
from frazil.services.control import Scope, suspend
from frazil.services.materialize import materialize_step
from frazil.services.submit import submit
from frazil.store import Database
from frazil.store.schema import task, task_attempt

HERE = Path(__file__).resolve().parent
NAME = "frazil_bench"
SITE = SiteResources(name="bench", cpu=64, gpu=8, memory=1024, disk=10_000, time=1000)


def config(dag: bool) -> DatasetConfig:
    """Five tasks per job: two roots feeding a chain of three (or five independent tasks)."""
    depends: list[list[str]] = [[], [], ["t0", "t1"], ["t2"], ["t3"]] if dag else [[]] * 5
    return DatasetConfig.model_validate(
        {
            "description": "benchmark",
            "tasks": [
                {
                    "name": f"t{i}",
                    "depends": deps,
                    "requirements": {"cpu": 1, "memory": 2.0, "time": 1.0},
                    "trays": [{"modules": [{"src": "run.sh", "args": "$args(job)"}]}],
                }
                for i, deps in enumerate(depends)
            ],
        }
    )


def spawn(*args: object, start_at: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *map(str, args)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "START_AT": str(start_at)},
    )


# -- workers (run in their own processes) ------------------------------------------------------


def work_materialize(url: str) -> None:
    db = Database(url)
    t0 = time.perf_counter()
    jobs = 0
    while n := materialize_step(db, time.time(), max_jobs=50_000, chunk=5_000):
        jobs += n
    seconds = time.perf_counter() - t0
    rss = own_peak_mb()
    print(json.dumps({"jobs": jobs, "seconds": seconds, "peak_rss_mb": rss}))


def work_claim(url: str, batch: int, out: str) -> None:
    db = Database(url)
    with db.read():
        pass
    time.sleep(max(0.0, float(os.environ.get("START_AT", "0")) - time.time()))
    t0 = time.perf_counter()
    claimed = 0
    with open(out, "w") as f:
        while claims := claim(db, SITE, batch, time.time()):
            claimed += len(claims)
            f.write("".join(f"{c.task_id}\n" for c in claims))
    print(json.dumps({"claimed": claimed, "start": t0, "end": time.perf_counter()}))


# -- the benchmark --------------------------------------------------------------------------------


def run_backend(backend: str, jobs: int, claimers: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = fresh(backend, NAME, workdir)
        db = Database(url)
        dag = submit(db, config(dag=True), jobs=jobs, now=time.time(), sync_jobs=0)
        mat = result_of(spawn("_materialize", url))
        tasks = mat["jobs"] * 5
        suspend(db, Scope(dag), now=time.time(), reason="benchmark: claims use the flat dataset")
        submit(db, config(dag=False), jobs=jobs, now=time.time(), sync_jobs=0)
        flat = result_of(spawn("_materialize", url))
        go = time.time() + 3.0
        outs = [workdir / f"claims{i}" for i in range(claimers)]
        procs = [spawn("_claim", url, batch, out, start_at=go) for out in outs]
        results = [result_of(p) for p in procs]
        claimed = sum(r["claimed"] for r in results)
        # perf_counter is per process but CLOCK_MONOTONIC on Linux: comparable across them
        wall = max(r["end"] for r in results) - min(r["start"] for r in results)
        counts = Counter(line for out in outs for line in out.read_text().split())
        double = sum(n - 1 for n in counts.values() if n > 1)
        with db.read() as conn:
            attempts = conn.execute(select(func.count()).select_from(task_attempt)).scalar_one()
            over = conn.execute(
                select(func.count()).select_from(task).where(task.c.attempts > 1)
            ).scalar_one()
        db.dispose()
    return {
        "backend": backend,
        "tasks_materialized": tasks,
        "materialize_s": mat["seconds"],
        "materialize_tasks_per_s": tasks / mat["seconds"],
        "materialize_peak_rss_mb": mat["peak_rss_mb"],
        "flat_materialize_s": flat["seconds"],
        "claimers": claimers,
        "batch": batch,
        "claimed": claimed,
        "claim_s": wall,
        "claims_per_s": claimed / wall,
        "claims_per_process": [r["claimed"] for r in results],
        "double_claims": double + over,
        "attempt_rows": attempts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgres"],
                        choices=["sqlite", "postgres", "mariadb"])  # fmt: skip
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend (medians shown)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    runs: list[dict[str, Any]] = []
    for backend in args.backend:
        for _ in range(args.repeat):
            r = run_backend(backend, args.jobs, args.claimers, args.batch)
            runs.append(r)
            brief = {k: round(r[k], 1) for k in ("materialize_s", "claims_per_s")}
            print(f"  {backend}: {brief}", file=sys.stderr)

    def median(backend: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["backend"] == backend)

    header = (
        f"{'backend':<9} {'tasks':>9} {'materialize s':>14} {'tasks/s':>9} {'peak RSS MB':>12} "
        f"{'claims/s':>9} {'claim s':>8} {'double':>7}"
    )
    print(header)
    print("-" * len(header))
    for backend in args.backend:
        print(
            f"{backend:<9} {int(median(backend, 'tasks_materialized')):>9} "
            f"{median(backend, 'materialize_s'):>14.1f} "
            f"{median(backend, 'materialize_tasks_per_s'):>9.0f} "
            f"{median(backend, 'materialize_peak_rss_mb'):>12.0f} "
            f"{median(backend, 'claims_per_s'):>9.0f} {median(backend, 'claim_s'):>8.1f} "
            f"{int(max(r['double_claims'] for r in runs if r['backend'] == backend)):>7}"
        )
    out = args.out or HERE / "results" / f"store_scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"jobs": args.jobs, "runs": runs}, indent=2))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_materialize":
        work_materialize(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "_claim":
        work_claim(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
