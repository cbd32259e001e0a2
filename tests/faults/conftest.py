"""The fault suite's world: a server and sites as real processes that the tests kill.

The server runs as ``python -m tests.faults.serve`` (see there), each site as ``frazil site
--config site.toml`` with the ``local`` batch plugin, each pilot as the plugin's process; they
talk HTTP over loopback and keep their state in a real database file (or PostgreSQL). The
tests watch the database directly, so that they see the run while the server is away.

``FRAZIL_FAULT_TASKS`` sets the tasks per run (default ``TASKS``), ``FRAZIL_FAULT_SEED`` the
seed of the random fault moments (printed by each test, to replay a failure).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from frazil.client import Client
from frazil.services.tokens import create_token
from frazil.store import Database
from frazil.store.schema import dataset, file, job, task, task_attempt
from tests.conftest import ROOT

#: The module every task runs: its output differs per attempt, so that a stale pilot that
#: overwrote a finished task's output would show in the checksums.
MODULE = Path(__file__).parent / "modules" / "output.py"

#: How every site of this suite runs its pilots: ``[queue]`` settings of its site.toml.
#: ``{"pilot": "multi"}``: multi-task pilots (many tasks per pilot process), 2,000-task runs;
#: empty: one pilot process per task (3-4 tasks/s on two cores), 150-task runs.
PILOT: dict[str, Any] = {"pilot": "multi"}

#: Tasks per run of the kill tests.
TASKS = int(
    os.environ.get("FRAZIL_FAULT_TASKS") or (2000 if PILOT.get("pilot") == "multi" else 150)
)

FRAZIL = Path(sys.executable).with_name("frazil")


def seed() -> int:
    """The seed of this test's random moments (``FRAZIL_FAULT_SEED``, else a fresh one)."""
    value = int(os.environ.get("FRAZIL_FAULT_SEED") or random.SystemRandom().randrange(10**6))
    print(f"FRAZIL_FAULT_SEED={value}")
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Service:
    """A process of ours (the server, a site) that can be started, killed and restarted.

    Every start appends to the same log file, so a test can read what all its lives said.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert not self.alive, f"{self.name} is running"
        with self.log.open("ab") as out:
            out.write(f"==== start {self.starts + 1} of {self.name}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` and wait for the process to end."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """End the process, politely first."""
        if not self.alive:
            return
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Server(Service):
    """The server process; ``start`` returns once it answers HTTP."""

    def __init__(self, home: Path, env: dict[str, str], port: int) -> None:
        argv = [sys.executable, "-m", "tests.faults.serve", "--port", str(port)]
        super().__init__("server", argv, env, home / "server.log")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 60.0) -> None:
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise AssertionError(f"the server exited:\n{self.text()[-3000:]}")
            try:
                httpx.get(f"{self.url}/health", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"the server did not answer in {timeout} s")


def write_toml(path: Path, data: dict[str, Any]) -> None:
    """A TOML file of tables of plain values (strings, numbers, booleans, inline tables)."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str | Path):
            return json.dumps(str(v))
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]", *(f"{n} = {value(x)}" for n, x in v.items())]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class World:
    """A database, a server process, a user client, and the sites the test starts."""

    home: Path
    db: Database
    env: dict[str, str]
    server: Server
    client: Client
    sites: dict[str, Service] = field(default_factory=dict)

    @property
    def storage(self) -> Path:
        return self.home / "storage"

    def site(
        self, name: str = "faults", *, scratch: Path | None = None, start: bool = True,
        server: str | None = None, **queue: Any,
    ) -> Service:  # fmt: skip
        """A site process with the ``local`` plugin (``queue`` overrides ``[queue]``), talking
        to ``server`` (default: the server's own address)."""
        _, token = create_token(self.db, name, "site", now=time.time())
        scratch = scratch or self.home / f"scratch-{name}"
        config = {
            "name": name,
            "server": server or self.server.url,
            "token": token,
            "queue": {
                "plugin": "local", "max_queued": 4, "claim_batch": 4, "poll_interval": 0.5,
                "heartbeat": 2.0, "options": {"cpus": 4, "memory": 8.0, "kill_grace": 2.0},
                **PILOT, **queue,
            },
            "resources": {"cpu": 1, "memory": 2.0, "disk": 5.0, "time": 1.0},
            "system": {"storage": f"file://{self.storage}", "module": str(MODULE)},
            "storage": {"scratch": scratch},
        }  # fmt: skip
        path = self.home / f"site-{name}.toml"
        write_toml(path, config)
        argv = [str(FRAZIL), "-v", "site", "--config", str(path)]
        service = Service(f"site {name}", argv, self.env, self.home / f"site-{name}.log")
        self.sites[name] = service
        if start:
            service.start()
        return service

    def submit(self, config: dict[str, Any], jobs: int) -> int:
        return self.client.submit(config, jobs=jobs)

    def dataset_status(self, dataset_id: int) -> str:
        with self.db.read() as conn:
            status: str = conn.execute(
                select(dataset.c.status).where(dataset.c.id == dataset_id)
            ).scalar_one()
        return status

    def complete_tasks(self, dataset_id: int) -> int:
        with self.db.read() as conn:
            n: int = conn.execute(
                select(func.count()).where(task.c.dataset_id == dataset_id,
                                           task.c.status == "complete")
            ).scalar_one()  # fmt: skip
        return n

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    def wait_done(self, dataset_id: int, timeout: float) -> None:
        """Wait for the dataset to end (complete or not); fail with the stragglers' story."""
        try:
            self.wait(
                lambda: self.dataset_status(dataset_id) in ("complete", "errors"), timeout,
                f"dataset {dataset_id} to end",
            )  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.explain(dataset_id)}") from None

    def explain(self, dataset_id: int) -> str:
        """The tasks that are not complete, with their attempts (for assertion messages)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(task.c.id, task.c.name, task.c.job_index, task.c.status,
                       task_attempt.c.number, task_attempt.c.site, task_attempt.c.outcome,
                       task_attempt.c.error)
                .join(task_attempt, task_attempt.c.task_id == task.c.id, isouter=True)
                .where(task.c.dataset_id == dataset_id, task.c.status != "complete")
                .order_by(task.c.id, task_attempt.c.number)
                .limit(200)
            ).all()  # fmt: skip
        return "\n".join(
            f"task {r.id} {r.name} job {r.job_index}: {r.status}; attempt {r.number} at "
            f"{r.site}: {r.outcome} {(r.error or '')[:300]!r}"
            for r in rows
        )


def make_world(db_url: str, home: Path) -> Iterator[World]:
    """Migrate ``db_url``, start a server process on it; stop everything at the end."""
    db = Database(db_url)
    db.migrate()
    _, user = create_token(db, "tester", "user", now=time.time())
    env = {
        **os.environ, "FRAZIL_HOME": str(home), "FRAZIL_DB_URL": db_url,
        "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    env.pop("FRAZIL_URL", None)
    env.pop("FRAZIL_TOKEN", None)
    server = Server(home, env, free_port())
    server.start()
    world = World(home, db, env, server, Client(server.url, user, retry_for=60))
    try:
        yield world
    finally:
        for site in world.sites.values():
            site.stop()
        server.stop()
        kill_strays(home)
        world.client.close()
        db.dispose()


def kill_strays(home: Path) -> None:
    """SIGKILL what our sites left running: batch runners and pilots (and their groups)."""
    marker = str(home).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker not in cmdline:
            continue
        pid = int(proc.name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group != os.getpgrp():
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)


def pilot_pids(home: Path) -> list[int]:
    """The running pilot processes of this world's sites."""
    marker = str(home).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"frazil.pilot" in argv and any(marker in a for a in argv):
            found.append(int(proc.name))
    return found


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A world on a SQLite file."""
    yield from make_world(f"sqlite:///{tmp_path / 'frazil.db'}", tmp_path)


# -- the datasets and what a finished run must look like ---------------------------------------


def chain_config(*, sleep: float = 0.0, size: int = 0, **options: Any) -> dict[str, Any]:
    """Jobs of two tasks: ``gen`` writes ``gen.txt``; ``use`` reads it and writes ``use.txt``.

    ``size`` pads ``gen``'s output to that many bytes.
    """

    def data(name: str, movement: str) -> dict[str, str]:
        return {"remote": f"$system(storage)/$args(job)/{name}", "local": name,
                "movement": movement}  # fmt: skip

    def one(name: str, args: str, depends: list[str], files: list[dict[str, str]]) -> Any:
        return {
            "name": name, "depends": depends, "data": files,
            "requirements": {"memory": 0.5, "time": 0.5},
            "trays": [{"modules": [{"name": name, "src": "$system(module)", "args": args}]}],
        }  # fmt: skip

    pad = f" --size {size}" if size else ""
    return {
        "description": "fault test",
        "options": {
            "max_failures": 10, "timeouts": {"queued": "30s", "heartbeat": "30s"}, **options,
        },
        "tasks": [
            one("gen", f"--out gen.txt --value 2 --sleep {sleep}{pad}", [],
                [data("gen.txt", "output")]),
            one("use", f"--out use.txt --input gen.txt --value 3 --sleep {sleep}", ["gen"],
                [data("gen.txt", "input"), data("use.txt", "output")]),
        ],
    }  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What a finished run did: attempts by outcome, and their errors."""

    tasks: int
    attempts: Counter[str]
    errors: list[str]


def check_outcome(db: Database, dataset_id: int, storage: Path) -> Outcome:
    """Assert what every run must end with, faults or not; return what it took.

    Every task complete, by exactly one attempt with outcome ``complete``; no attempt left
    open; one file record per output, the file on disk with its recorded sha256; the job
    and dataset counters equal to counts of the tasks.
    """
    with db.read() as conn:
        d = conn.execute(select(dataset).where(dataset.c.id == dataset_id)).one()
        tasks = conn.execute(select(task).where(task.c.dataset_id == dataset_id)).all()
        ids = [t.id for t in tasks]
        attempts = conn.execute(
            select(task_attempt)
            .join(task, task.c.id == task_attempt.c.task_id)
            .where(task.c.dataset_id == dataset_id)
        ).all()
        files = conn.execute(
            select(file).where(file.c.dataset_id == dataset_id, file.c.movement == "output")
        ).all()
        jobs = conn.execute(select(job).where(job.c.dataset_id == dataset_id)).all()
    assert d.status == "complete", f"dataset is {d.status}"
    assert Counter(t.status for t in tasks) == {"complete": len(tasks)}
    per_task = Counter(a.task_id for a in attempts if a.outcome == "complete")
    assert all(per_task[t] == 1 for t in ids), {t: per_task[t] for t in ids if per_task[t] != 1}
    assert [a for a in attempts if a.outcome == "open"] == []
    numbers = Counter(a.task_id for a in attempts)
    assert all(numbers[t.id] == t.attempts for t in tasks), "attempt rows != task.attempts"
    assert all(t.failures <= t.attempts for t in tasks)

    # one output record per task, from its complete attempt; the file is there, unchanged
    complete_attempt = {a.task_id: a.id for a in attempts if a.outcome == "complete"}
    assert len(files) == len(tasks)
    assert Counter(f.url for f in files).most_common(1)[0][1] == 1, "an output recorded twice"
    for f in files:
        assert f.attempt_id == complete_attempt[f.task_id]
        path = Path(f.url.removeprefix("file://"))
        assert path.is_relative_to(storage)
        data = path.read_bytes()
        assert (f.size, f.checksum) == (len(data), hashlib.sha256(data).hexdigest()), path

    # counters, as the transactions kept them (the server of this suite runs no repair)
    by_job: dict[int, list[Any]] = {}
    for t in tasks:
        by_job.setdefault(t.job_index, []).append(t)
    assert {j.job_index for j in jobs} == set(by_job)
    for j in jobs:
        ts = by_job[j.job_index]
        stored = (j.status, j.n_tasks, j.n_complete, j.n_failed, j.n_suspended, j.failures)
        counted = ("complete", len(ts), len(ts), 0, 0, sum(t.failures for t in ts))
        assert stored == counted, f"job {j.job_index}"
    totals = (d.jobs_submitted, d.jobs_materialized, d.jobs_complete, d.jobs_failed)
    assert totals == (len(jobs), len(jobs), len(jobs), 0)
    return Outcome(
        len(tasks),
        Counter(a.outcome for a in attempts),
        [a.error for a in attempts if a.error],
    )


__all__ = [
    "PILOT", "TASKS", "Outcome", "Server", "Service", "World", "chain_config", "check_outcome",
    "free_port", "kill_strays", "make_world", "pilot_pids", "seed",
]  # fmt: skip
