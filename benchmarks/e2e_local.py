"""Through the HTTP API: status updates per second, and 2,000 no-op tasks end to end.

    python benchmarks/e2e_local.py [--backend sqlite postgres] [--clients 8] [--seconds 10]
                                   [--tasks 2000] [--slots 8]

1. Status updates: ``frazil server`` runs in its own process; ``--clients`` processes send
   pilot heartbeats (a passkey check and an update, each its own transaction) for
   ``--seconds``, round-robin over 2,000 processing attempts; updates/s is what the server
   answered with 200.
2. End to end: a server and a local site in this process run ``--tasks`` one-task jobs whose
   module is ``/bin/true``, one pilot process per task, ``--slots`` at a time; the wall time
   runs from submission to the dataset's completion.

Results are printed as a table and written as JSON to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import free_port, fresh

from frazil.client import Client
from frazil.model.records import SiteResources
from frazil.model.spec import DatasetConfig
from frazil.server.main import ServerThread
from frazil.services import attempts
from frazil.services.claim import claim
from frazil.services.submit import submit
from frazil.services.tokens import create_token
from frazil.site.config import Queue, SiteConfig, Storage
from frazil.site.main import build
from frazil.site.main import run as run_site
from frazil.store import Database
from frazil.wire import Slot

HERE = Path(__file__).resolve().parent


def noop_config() -> DatasetConfig:
    return DatasetConfig.model_validate(
        {
            "description": "no-op",
            "tasks": [
                {
                    "name": "noop",
                    "requirements": {"cpu": 1, "memory": 0.5, "time": 0.5},
                    "trays": [{"modules": [{"src": "/bin/true"}]}],
                }
            ],
        }
    )


# -- status updates ---------------------------------------------------------------------------


def work_heartbeats(
    url: str, pilots_file: str, seconds: float, start_at: float, batch: int
) -> None:
    pilots = json.loads(Path(pilots_file).read_text())
    http = httpx.Client(base_url=url)
    time.sleep(max(0.0, start_at - time.time()))
    done = errors = 0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        if batch == 1:
            p = pilots[i % len(pilots)]
            i += 1
            response = http.post(
                f"/pilot/tasks/{p['task_id']}/attempts/{p['attempt']}/heartbeat",
                json={"phase": None}, headers={"Authorization": f"Passkey {p['passkey']}"},
            )  # fmt: skip
            ok = 1 if response.status_code == 200 else 0
        else:
            beats = [pilots[(i + k) % len(pilots)] for k in range(batch)]
            i += batch
            response = http.post(
                "/pilot/heartbeats", json={"beats": beats},
                headers={"Authorization": f"Passkey {beats[0]['passkey']}"},
            )  # fmt: skip
            ok = response.json()["results"].count("ok") if response.status_code == 200 else 0
        done += ok
        errors += (1 if batch == 1 else batch) - ok
    print(json.dumps({"done": done, "errors": errors}))


def status_updates(
    backend: str, n_clients: int, seconds: float, workdir: Path, batch: int
) -> dict[str, Any]:
    url = fresh(backend, "frazil_bench", workdir)
    db = Database(url)
    d = submit(db, noop_config(), jobs=2000, now=time.time())
    site = SiteResources(name="bench", cpu=8, memory=64, disk=100, time=24)
    pilots = []
    while claims := claim(db, site, 1000, time.time()):
        for c in claims:
            attempts.start(db, c.task_id, c.attempt, c.passkey, now=time.time())
            pilots.append({"task_id": c.task_id, "attempt": c.attempt, "passkey": c.passkey})
    assert len(pilots) == 2000, d
    db.dispose()
    port = free_port()
    env = {**os.environ, "FRAZIL_DB_URL": url, "FRAZIL_HOME": str(workdir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "frazil", "server", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        start_at = time.time() + 2.0
        procs = []
        for k in range(n_clients):
            part = workdir / f"pilots{k}.json"
            part.write_text(json.dumps(pilots[k::n_clients]))
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "_heartbeats",
                        base,
                        str(part),
                        str(seconds),
                        str(start_at),
                        str(batch),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    finally:
        server.terminate()
        server.wait(timeout=30)
    done = sum(r["done"] for r in results)
    return {
        "backend": backend,
        "clients": n_clients,
        "batch": batch,
        "seconds": seconds,
        "updates": done,
        "errors": sum(r["errors"] for r in results),
        "updates_per_s": done / seconds,
    }


# -- end to end -----------------------------------------------------------------------------------


def end_to_end(backend: str, tasks: int, slots: int, workdir: Path) -> dict[str, Any]:
    url = fresh(backend, "frazil_bench", workdir)
    db = Database(url)
    now = time.time()
    _, user = create_token(db, "bench", "user", now=now)
    _, site_token = create_token(db, "local", "site", now=now)
    server = ServerThread(db, fast_daemons=True).start()
    config = SiteConfig(
        name="local",
        server=server.url,
        token=site_token,
        queue=Queue(plugin="local", max_queued=slots, claim_batch=slots, submit_rate=slots,
                    poll_interval=0.05, heartbeat=30.0,
                    options={"cpus": slots, "memory": 64.0, "gpus": 0}),
        resources=Slot(cpu=1, gpu=0, memory=2.0, disk=5.0, time=1.0),
        storage=Storage(scratch=workdir / "scratch"),
    )  # fmt: skip
    stop = threading.Event()
    site = build(config)
    thread = threading.Thread(target=run_site, args=(site, stop), daemon=True)
    thread.start()
    client = Client(server.url, user)
    started = time.perf_counter()
    d = client.submit(noop_config().model_dump(by_alias=True, exclude_unset=True), jobs=tasks)
    while client.dataset(d).dataset.status not in ("complete", "errors"):
        time.sleep(0.2)
    wall = time.perf_counter() - started
    status = client.dataset(d).dataset.status
    stop.set()
    thread.join(timeout=30)
    server.stop()
    db.dispose()
    return {
        "backend": backend,
        "tasks": tasks,
        "slots": slots,
        "status": status,
        "wall_s": wall,
        "tasks_per_s": tasks / wall,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", nargs="+", default=["sqlite", "postgres"],
                   choices=["sqlite", "postgres", "mariadb"])  # fmt: skip
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--batch", type=int, default=100, help="heartbeats per batched request")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    updates, batched, e2e = [], [], []
    for backend in a.backend:
        with tempfile.TemporaryDirectory() as tmp:
            updates.append(status_updates(backend, a.clients, a.seconds, Path(tmp), 1))
        with tempfile.TemporaryDirectory() as tmp:
            batched.append(status_updates(backend, a.clients, a.seconds, Path(tmp), a.batch))
        with tempfile.TemporaryDirectory() as tmp:
            e2e.append(end_to_end(backend, a.tasks, a.slots, Path(tmp)))
    print(
        f"{'backend':<9} {'updates/s':>10} {f'batched x{a.batch}':>12} "
        f"{'no-op tasks':>12} {'wall s':>8} {'tasks/s':>8}"
    )
    for u, b, e in zip(updates, batched, e2e, strict=True):
        print(
            f"{u['backend']:<9} {u['updates_per_s']:>10.0f} {b['updates_per_s']:>12.0f} "
            f"{e['tasks']:>12} {e['wall_s']:>8.1f} {e['tasks_per_s']:>8.1f}"
        )
    out = a.out or HERE / "results" / f"e2e_local-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"status_updates": updates, "batched": batched, "end_to_end": e2e}, indent=2)
    )
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_heartbeats":
        work_heartbeats(
            sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
        )
    else:
        main()
