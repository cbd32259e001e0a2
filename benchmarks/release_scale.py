"""Dependency release at scale: what one completion costs as the database grows.

    python benchmarks/release_scale.py [--backend sqlite postgres mariadb]
                                       [--sizes 1000 10000 100000 1000000] [--sample 1000]
                                       [--via http direct] [--out FILE]

For each backend, every size N and way in (``--via``) gets a database of its own (a "lane")
holding one dataset of N/5 jobs, each a chain of five tasks (t0 → t1 → t2 → t3 → t4),
materialized in a separate process (its memory does not count). In each lane ``--sample``
root tasks (at most one per job) are claimed in one call and started one by one; then the
lanes finish them one at a time, interleaved (each lane's finishes spread evenly over the
whole run), so that the machine's other load falls on every size alike. Only the finishes
are timed; each completes a root and releases its one child (t1 of the same job: one
pending dependency → none → ``waiting``).

- ``http``: a real ``frazil server`` subprocess (with its daemons) per lane, called from this
  process over one keep-alive connection; the times are round trips. Its peak RSS is VmHWM
  from ``/proc/<pid>/status``, read once the server has settled after its start (its repair
  daemon recounts the dataset then) and again after the sample.
- ``direct``: the services called in a worker process per lane, which times each finish
  itself; the peak RSS is that process's own (VmHWM), imports and all.

Afterwards the script checks in every lane that exactly the sample's roots are complete and
their children ``waiting``, and that no other task changed. Release is flat when the median
at the largest size stays within ``FLAT_RATIO`` of the median at the smallest.

PostgreSQL and MariaDB lanes use databases called ``frazil_release_<via>_<size>``, which this
script (re)creates and drops again on the server named by ``FRAZIL_BENCH_POSTGRES_URL`` (else
``FRAZIL_TEST_POSTGRES_URL``) / ``FRAZIL_BENCH_MARIADB_URL`` (else
``FRAZIL_TEST_MARIADB_URL``), by default the local servers, user root. Results are printed as
a table and written as JSON to ``benchmarks/results/release-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

import httpx
from databases import admin_engine, drop, free_port, fresh, own_peak_mb, result_of, status_mb
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, text

from frazil.model.records import SiteResources
from frazil.model.spec import DatasetConfig
from frazil.model.states import TaskStatus
from frazil.services import attempts
from frazil.services.claim import claim
from frazil.services.materialize import materialize_step
from frazil.services.submit import submit
from frazil.services.tokens import create_token
from frazil.store import Database
from frazil.store.schema import task

HERE = Path(__file__).resolve().parent
CHAIN = 5
SITE_NAME = "bench"
SLOT = {"cpu": 64, "gpu": 8, "memory": 1024.0, "disk": 10_000.0, "time": 1000.0}
SITE = SiteResources(name=SITE_NAME, cpu=64, gpu=8, memory=1024.0, disk=10_000.0, time=1000.0)
#: The largest size's median may be at most this many times the smallest size's.
FLAT_RATIO = 2.0
Shape = dict[str, int]  # "task_index/status/deps_pending" -> number of tasks


def chain_config() -> DatasetConfig:
    """Five tasks per job, each depending on the one before."""
    return DatasetConfig.model_validate(
        {
            "description": "release benchmark: a chain of five",
            "tasks": [
                {
                    "name": f"t{i}",
                    "depends": [f"t{i - 1}"] if i else [],
                    "requirements": {"cpu": 1, "memory": 2.0, "time": 1.0},
                    "trays": [{"modules": [{"src": "run.sh", "args": "$args(job)"}]}],
                }
                for i in range(CHAIN)
            ],
        }
    )


def spawn(*args: object, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *map(str, args)], stdin=stdin,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip


def shape(db: Database) -> Shape:
    """How many tasks there are of each (task index, status, pending dependencies)."""
    with db.read() as conn:
        rows = conn.execute(
            select(task.c.task_index, task.c.status, task.c.deps_pending, func.count())
            .group_by(task.c.task_index, task.c.status, task.c.deps_pending)
        ).all()  # fmt: skip
    return {f"{r[0]}/{r[1]}/{r[2]}": int(r[3]) for r in rows}


def check(db: Database, before: Shape, sample_jobs: list[int]) -> list[str]:
    """What is wrong after the sample (nothing, if the list is empty)."""
    problems = []
    n = len(sample_jobs)
    if len(set(sample_jobs)) != n:
        problems.append("a job's root was completed twice")
    expected = Counter(before)
    for old, new in (("0/waiting/0", "0/complete/0"), ("1/idle/1", "1/waiting/0")):
        expected[old] -= n
        expected[new] += n
    after = shape(db)
    want = {k: v for k, v in expected.items() if v}
    if after != want:
        diff = {k: (want.get(k, 0), after.get(k, 0)) for k in set(want) | set(after)}
        problems.append(f"tasks by index/status/pending (expected, found): {diff}")
    with db.read() as conn:
        for index, status in ((0, TaskStatus.COMPLETE), (1, TaskStatus.WAITING)):
            jobs = conn.execute(
                select(task.c.job_index).where(task.c.task_index == index,
                                               task.c.status == status.value)
            ).scalars().all()  # fmt: skip
            if sorted(jobs) != sorted(sample_jobs):
                problems.append(f"the t{index} tasks {status.value} are not the sample's")
    return problems


def summary(times: list[float]) -> dict[str, float]:
    """Median, p95 (ms) and completions/s one after the other, of ``times`` (seconds)."""
    ms = sorted(t * 1000 for t in times)
    p95 = statistics.quantiles(ms, n=100, method="inclusive")[94] if len(ms) > 1 else ms[0]
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": p95,
        "max_ms": ms[-1],
        "completions_per_s": len(ms) / (sum(ms) / 1000),
    }


# -- workers (run in their own processes) ------------------------------------------------------


def work_materialize(url: str) -> None:
    db = Database(url)
    t0 = time.perf_counter()
    jobs = 0
    while n := materialize_step(db, time.time(), max_jobs=50_000, chunk=5_000):
        jobs += n
    seconds = time.perf_counter() - t0
    print(json.dumps({"jobs": jobs, "seconds": seconds, "peak_rss_mb": own_peak_mb()}))


def work_direct(url: str, sample: int) -> None:
    """Claim and start ``sample`` roots; then finish the next one per ``finish`` line read."""
    db = Database(url)
    claims = claim(db, SITE, sample, time.time())
    for c in claims:
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=time.time())
    print(len(claims), flush=True)
    done = 0
    for line in sys.stdin:
        if line.strip() != "finish":
            break
        c = claims[done]
        t0 = time.perf_counter()
        attempts.finish(db, c.task_id, c.attempt, c.passkey, now=time.time())
        print(time.perf_counter() - t0, flush=True)
        done += 1
    jobs = [c.job_index for c in claims[:done] if c.task_index == 0]
    end = {"jobs": jobs, "claimed": len(claims), "peak_rss_mb": own_peak_mb()}
    print(json.dumps(end), flush=True)


# -- the server, watched from outside --------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, timeout: float = 600.0) -> float:
    """Wait until the process used under 2% of a core for a second; returns the wait."""
    t0 = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() - t0 < timeout:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            break
        last = now
    return time.monotonic() - t0


# -- lanes: one database, one size, one way in -----------------------------------------------


class Lane:
    """One size of one backend, reached one way; ``finish_one`` times the next finish."""

    def __init__(self, backend: str, via: str, size: int, workdir: Path) -> None:
        self.backend, self.via, self.jobs = backend, via, size // CHAIN
        self.name = f"frazil_release_{via}_{size}"
        self.workdir = workdir / self.name
        self.workdir.mkdir()
        self.url = fresh(backend, self.name, workdir)
        self.db = Database(self.url)
        submit(self.db, chain_config(), jobs=self.jobs, now=time.time(), sync_jobs=0)
        self.materialized = result_of(spawn("_materialize", self.url))
        self.before = shape(self.db)
        self.db.dispose()
        self.times: list[float] = []
        self.info: dict[str, Any] = {}
        self.running = False

    def prepare(self, sample: int) -> int:
        """Claim and start the sample; returns how many roots were claimed."""
        raise NotImplementedError

    def finish_one(self) -> float:
        raise NotImplementedError

    def close(self) -> list[int]:
        """Stop; returns the job indexes whose roots were finished."""
        raise NotImplementedError

    def result(self, jobs: list[int], claimed: int, sample: int) -> dict[str, Any]:
        problems = [] if claimed == sample else [f"claimed {claimed} roots, not {sample}"]
        problems += check(self.db, self.before, jobs)
        self.db.dispose()
        drop(self.backend, self.name)
        return {
            "backend": self.backend,
            "via": self.via,
            "tasks": self.jobs * CHAIN,
            "jobs": self.jobs,
            "sample": len(self.times),
            "materialize_s": self.materialized["seconds"],
            "materialize_peak_rss_mb": self.materialized["peak_rss_mb"],
            **summary(self.times),
            **self.info,
            "problems": problems,
            "finish_ms": [round(t * 1000, 3) for t in self.times],
        }


class HttpLane(Lane):
    """Through a ``frazil server`` subprocess of the lane's own."""

    def start_server(self) -> None:
        db = Database(self.url)
        _, token = create_token(db, SITE_NAME, "site", now=time.time())
        db.dispose()
        port = free_port()
        env = {**os.environ, "FRAZIL_DB_URL": self.url, "FRAZIL_HOME": str(self.workdir)}
        self.log: TextIO = (self.workdir / "server.log").open("w")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "frazil", "server", "--port", str(port)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        self.token = {"Authorization": f"Bearer {token}"}
        self.started = time.monotonic()
        self.claims: list[dict[str, Any]] = []
        self.running = True

    def log_tail(self) -> str:
        lines = (self.workdir / "server.log").read_text().splitlines()[-40:]
        return "\n".join([f"{self.name}: the server's log ends:", *lines])

    def prepare(self, sample: int) -> int:
        self.start_server()
        while True:
            try:
                self.http.get("/health", headers=self.token, timeout=1).raise_for_status()
                break
            except httpx.TransportError as exc:
                if self.server.poll() is not None or time.monotonic() - self.started > 60:
                    raise SystemExit(f"the server did not start\n{self.log_tail()}") from exc
                time.sleep(0.1)
        self.info["settle_s"] = settle(self.server.pid)
        self.info["startup_s"] = time.monotonic() - self.started
        self.info["rss_after_start_mb"] = status_mb(self.server.pid, "VmHWM")
        response = self.http.post(f"/sites/{SITE_NAME}/claim", json={"limit": sample, **SLOT},
                                  headers=self.token)  # fmt: skip
        self._ok(response)
        self.claims = response.json()
        for c in self.claims:
            self._ok(self.http.post(f"{self._base(c)}/start", json={"host": "bench"},
                                    headers=self._key(c)))  # fmt: skip
        return len(self.claims)

    def _base(self, c: dict[str, Any]) -> str:
        return f"/pilot/tasks/{c['task_id']}/attempts/{c['attempt']}"

    def _key(self, c: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Passkey {c['passkey']}"}

    def _ok(self, response: httpx.Response) -> None:
        if response.is_error:
            raise SystemExit(
                f"{response.request.method} {response.request.url} answered "
                f"{response.status_code}: {response.text}\n{self.log_tail()}"
            )

    def finish_one(self) -> float:
        c = self.claims[len(self.times)]
        t0 = time.perf_counter()
        response = self.http.post(f"{self._base(c)}/finish", json={}, headers=self._key(c))
        seconds = time.perf_counter() - t0
        self._ok(response)
        self.times.append(seconds)
        return seconds

    def close(self) -> list[int]:
        if self.server.poll() is None:
            self.info["peak_rss_mb"] = status_mb(self.server.pid, "VmHWM")
            self.info["rss_end_mb"] = status_mb(self.server.pid, "VmRSS")
        self.http.close()
        self.server.terminate()
        self.server.wait(timeout=60)
        self.log.close()
        done = self.claims[: len(self.times)]
        return [c["job_index"] for c in done if c["task_index"] == 0]


class DirectLane(Lane):
    """The services, called in a worker process of the lane's own."""

    def prepare(self, sample: int) -> int:
        self.worker = spawn("_direct", self.url, sample, stdin=subprocess.PIPE)
        self.running = True
        return int(self._line())

    def _line(self) -> str:
        assert self.worker.stdout is not None
        line = self.worker.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the worker died (exit code {self.worker.wait()})")
        return line

    def finish_one(self) -> float:
        assert self.worker.stdin is not None
        self.worker.stdin.write("finish\n")
        self.worker.stdin.flush()
        seconds = float(self._line())
        self.times.append(seconds)
        return seconds

    def close(self) -> list[int]:
        assert self.worker.stdin is not None
        self.worker.stdin.close()
        end = json.loads(self._line())
        self.worker.wait(timeout=60)
        self.info["peak_rss_mb"] = end["peak_rss_mb"]
        return list(end["jobs"])


def run_backend(backend: str, sizes: list[int], vias: list[str], sample: int) -> list[Any]:
    with tempfile.TemporaryDirectory() as tmp:
        lanes: list[Lane] = []
        for via in vias:
            for size in sorted(sizes):
                kind = HttpLane if via == "http" else DirectLane
                lanes.append(kind(backend, via, size, Path(tmp)))
                m = lanes[-1].materialized
                print(f"  {backend} {via} {size:>9,}: materialized in {m['seconds']:.1f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
        wants = {id(lane): min(sample, lane.jobs) for lane in lanes}
        claimed = {}
        try:
            for lane in lanes:  # one after the other: a server's start has the machine
                claimed[id(lane)] = lane.prepare(wants[id(lane)])
            # each lane's k-th finish at (k + 1/2) / n of the way: every size sees the same load
            order = sorted(
                ((k + 0.5) / claimed[id(lane)], i)
                for i, lane in enumerate(lanes)
                for k in range(claimed[id(lane)])
            )
            for _, i in order:
                lanes[i].finish_one()
        finally:
            jobs = {id(lane): lane.close() for lane in lanes if lane.running}
        return [lane.result(jobs[id(lane)], claimed[id(lane)], wants[id(lane)]) for lane in lanes]


# -- the report ------------------------------------------------------------------------------


def machine(backends: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "sqlite": sqlite3.sqlite_version,
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                  if ln.startswith("model name")]  # fmt: skip
        info["cpu_model"] = models[0] if models else None
    for backend in backends:
        if backend == "sqlite":
            continue
        engine = admin_engine(backend)
        with engine.connect() as conn:
            info[f"{backend}_version"] = conn.execute(text("SELECT version()")).scalar()
        engine.dispose()
    return info


def verdicts(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Largest size's median over smallest size's, per backend and way in."""
    out = []
    for key in dict.fromkeys((r["backend"], r["via"]) for r in runs):
        mine = sorted(
            (r for r in runs if (r["backend"], r["via"]) == key), key=lambda r: r["tasks"]
        )
        small, large = mine[0], mine[-1]
        ratio = large["median_ms"] / small["median_ms"]
        out.append({
            "backend": key[0], "via": key[1], "small": small["tasks"], "large": large["tasks"],
            "ratio": ratio, "flat": ratio <= FLAT_RATIO,
        })  # fmt: skip
    return out


def report(runs: list[dict[str, Any]], found: list[dict[str, Any]]) -> None:
    table = Table(title="Dependency release: one finish (completes a root, releases its child)")
    for name in ("backend", "via", "tasks", "sample", "median ms", "p95 ms", "completions/s",
                 "peak RSS MB", "RSS after start MB", "check"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("backend", "via", "check") else "right")
    for r in runs:
        table.add_row(
            r["backend"], r["via"], f"{r['tasks']:,}", str(r["sample"]),
            f"{r['median_ms']:.2f}", f"{r['p95_ms']:.2f}", f"{r['completions_per_s']:.0f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['rss_after_start_mb']:.0f}" if "rss_after_start_mb" in r else "-",
            "ok" if not r["problems"] else "FAILED",
        )  # fmt: skip
    console = Console(width=None if sys.stdout.isatty() else 132)
    console.print(table)
    console.print(
        "peak RSS (VmHWM): the `frazil server` process (http), the worker process (direct); "
        "completions/s: one after the other"
    )
    for v in found:
        console.print(
            f"verdict {v['backend']}/{v['via']}: the median at {v['large']:,} tasks is "
            f"{v['ratio']:.2f}x the median at {v['small']:,} (limit {FLAT_RATIO:g}x): "
            + ("FLAT" if v["flat"] else "NOT FLAT")
        )
    broken = [f"{r['backend']}/{r['via']}/{r['tasks']}" for r in runs if r["problems"]]
    if broken:
        console.print(f"correctness check FAILED in {', '.join(broken)}: see the JSON")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", nargs="+", default=["sqlite"],
                        choices=["sqlite", "postgres", "mariadb"])  # fmt: skip
    parser.add_argument("--sizes", nargs="+", type=int,
                        default=[1_000, 10_000, 100_000, 1_000_000])  # fmt: skip
    parser.add_argument("--sample", type=int, default=1000, help="roots completed per size")
    parser.add_argument("--via", nargs="+", default=["http", "direct"], choices=["http", "direct"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if min(args.sizes) < CHAIN or args.sample < 1:
        parser.error(f"every size needs at least one job of {CHAIN} tasks, and a sample")

    info = machine(args.backend)
    runs: list[dict[str, Any]] = []
    for backend in args.backend:
        runs += run_backend(backend, args.sizes, args.via, args.sample)
    found = verdicts(runs)
    report(runs, found)
    out = args.out or HERE / "results" / f"release-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    out.write_text(json.dumps(
        {"machine": info, "args": settings, "flat_ratio": FLAT_RATIO, "verdicts": found,
         "runs": runs},
        indent=2,
    ))  # fmt: skip
    print(f"written: {out}")
    if any(r["problems"] for r in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_materialize":
        work_materialize(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "_direct":
        work_direct(sys.argv[2], int(sys.argv[3]))
    else:
        main()
