"""Frazil: a server process, a local site with multi-task pilots, every task through the API.

    python benchmarks/runners/frazil_run.py --workload indep:2000 --backend sqlite

The server runs as its own process (``frazil server``) on SQLite (the embedded default) or on
a fresh PostgreSQL database (``FRAZIL_BENCH_POSTGRES_URL``, default the test server's). A site
daemon with the ``local`` batch plugin starts ``PILOTS`` multi-task pilots of ``SLOTS`` task
slots each; every task is a dataset task whose module (``frazil_noop:Noop``) runs inside the
pilot, and every state change goes through the server and the database, as in production.
A workload is one dataset: ``jobs`` jobs, each a chain of ``length`` tasks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

from common import Token, Workload, main
from databases import drop, free_port, fresh

from frazil.client import Client
from frazil.services.tokens import create_token
from frazil.site.config import Queue, SiteConfig, Storage
from frazil.site.main import build
from frazil.site.main import run as run_site
from frazil.store import Database
from frazil.wire import Slot

PILOTS = int(os.environ.get("FRAZIL_BENCH_PILOTS", "2"))
SLOTS = int(os.environ.get("FRAZIL_BENCH_SLOTS", "4"))
RUNNERS = Path(__file__).resolve().parent


class Frazil:
    version = version("frazil")

    def __init__(self, backend: str | None) -> None:
        self.backend = backend or "sqlite"
        self.config = f"{self.backend}, {PILOTS} pilots x {SLOTS} slots"
        self.server: subprocess.Popen[bytes] | None = None
        self.client: Client | None = None
        self.stop_site = threading.Event()
        self.site_thread: threading.Thread | None = None
        self.database = f"frazil_run_{uuid.uuid4().hex[:8]}"
        self.site: Any = None

    def start(self, workdir: Path) -> None:
        url = fresh(self.backend, self.database, workdir)
        db = Database(url)
        now = time.time()
        _, user = create_token(db, "bench", "user", now=now)
        _, site_token = create_token(db, "bench-site", "site", now=now)
        db.dispose()
        port = free_port()
        env = {**os.environ, "FRAZIL_HOME": str(workdir), "FRAZIL_DB_URL": url}
        self.server = subprocess.Popen(
            [str(Path(sys.executable).parent / "frazil"), "server", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=open(workdir / "server.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        if os.environ.get("FRAZIL_BENCH_PROFILE"):  # py-spy's collapsed stacks of the server
            subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
                 "--rate", "200", "--pid", str(self.server.pid),
                 "-o", os.environ["FRAZIL_BENCH_PROFILE"]],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        self.client = Client(url, user, retry_for=30)
        self.client.health()
        pythonpath = os.pathsep.join(
            [str(RUNNERS), str(RUNNERS.parent), os.environ.get("PYTHONPATH", "")]
        )
        site = SiteConfig(
            name="bench-site",
            server=url,
            token=site_token,
            queue=Queue(
                plugin="local", pilot="multi", max_queued=PILOTS, claim_batch=PILOTS,
                poll_interval=0.2, heartbeat=30.0, pilot_idle=120.0,
                options={"cpus": PILOTS * SLOTS, "memory": PILOTS * 8.0, "gpus": 0},
            ),
            resources=Slot(cpu=SLOTS, memory=8.0, disk=10.0, time=1.0),
            environment={"PYTHONPATH": pythonpath},
            storage=Storage(scratch=workdir / "scratch"),
        )  # fmt: skip
        self.site = build(site)
        self.site_thread = threading.Thread(
            target=run_site, args=(self.site, self.stop_site), daemon=True
        )
        self.site_thread.start()

    def run(self, w: Workload, log: str) -> list[Token]:
        assert self.client is not None
        tasks = [
            {
                "name": f"s{step}",
                "depends": [f"s{step - 1}"] if step else [],
                "requirements": {"cpu": 1, "memory": 0.1, "disk": 0.1, "time": 0.1},
                "trays": [{"modules": [{
                    "name": "noop", "class": "frazil_noop:Noop",
                    "parameters": {"job": "$args(job)", "step": step, "log": log},
                }]}],
            }
            for step in range(w.length)
        ]  # fmt: skip
        config: dict[str, Any] = {"description": f"benchmark {w.name}", "tasks": tasks}
        d = self.client.submit(config, jobs=w.jobs)
        while True:
            status = self.client.dataset(d).dataset.status
            if status in ("complete", "errors", "failed", "suspended"):
                break
            time.sleep(0.1)  # the status view counts jobs: do not poll it hard
        if status != "complete":
            raise RuntimeError(f"dataset {d} ended {status}")
        done = self.client.tasks(d, status="complete", limit=w.tasks)
        return [(t.job_index, t.task_index) for t in done]

    def stop(self) -> None:
        self.stop_site.set()
        if self.site_thread is not None:
            self.site_thread.join(timeout=30)
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
        if self.site is not None and self.site.running:
            self.site.plugin.cancel(list(self.site.running))  # the pilots
        drop(self.backend, self.database)


if __name__ == "__main__":
    main("frazil", Frazil, backends=("sqlite", "postgres"))
