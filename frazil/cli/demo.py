"""``frazil demo``: a server, a local site and a dataset, all in this process, to the end.

It makes a fresh directory (a SQLite database, scratch space, storage), starts the API and
its daemons, starts a site whose local batch plugin runs pilots as real processes (with one
GPU slot for the photon propagation), submits the simulation chain with a handful of jobs,
shows the progress live, and finishes with the outputs on disk, their recorded checksums
checked against the files, and the statistics. It exits non-zero unless every task completed.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from frazil.cli.text import console, shown

if TYPE_CHECKING:
    from rich.table import Table

    from frazil.client import Client
    from frazil.site.config import SiteConfig
    from frazil.store import Database
    from frazil.wire import DatasetStatusView

# the server, the site and the database are imported when the demo runs (not for --help)
STATES = ["idle", "waiting", "queued", "processing", "complete", "failed", "suspended"]


def _site_config(url: str, token: str, home: Path, example: Path) -> SiteConfig:
    from frazil.site.config import Queue, SiteConfig, Storage  # noqa: PLC0415
    from frazil.wire import Slot  # noqa: PLC0415

    software = example.parent / "simulation"
    return SiteConfig(
        name="local",
        server=url,
        token=token,
        queue=Queue(
            plugin="local",
            max_queued=4,
            claim_batch=4,
            poll_interval=0.3,
            heartbeat=5.0,
            options={"cpus": max(2, os.cpu_count() or 2), "memory": 16.0, "gpus": 1},
        ),
        resources=Slot(cpu=1, gpu=1, memory=8.0, disk=20.0, time=24.0),
        system={
            "software": str(software),
            "gcd_dir": str(software / "gcd"),
            "storage": f"file://{home / 'storage'}",
            "scratch_url": f"file://{home / 'intermediate'}",
        },
        storage=Storage(scratch=home / "scratch", cache=home / "cache"),
    )


def _progress(view: DatasetStatusView) -> Table:
    from rich.table import Table  # noqa: PLC0415

    d = view.dataset
    done = f"{d.jobs_complete}/{d.jobs_submitted} jobs complete"
    table = Table(title=f"dataset {d.id}: {d.status} — {done}")
    table.add_column("task")
    for s in STATES:
        table.add_column(s, justify="right")
    for name, by_state in view.counts.items():
        table.add_row(shown(name), *(str(by_state.get(s, "")) for s in STATES))
    return table


def demo(
    jobs: Annotated[int, typer.Option("--jobs", "-n", help="Jobs to run.", min=1)] = 4,
    config: Annotated[Path, typer.Option(help="Dataset config.")] = Path(
        "examples/simulation.yaml"
    ),
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to put everything (default: a new one).")
    ] = None,
    db_url: Annotated[str | None, typer.Option(help="Use this database instead of SQLite.")] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 600.0,
) -> None:
    """Run the simulation chain end to end on this machine: server, site, pilots."""
    from rich.live import Live  # noqa: PLC0415

    from frazil.client import Client  # noqa: PLC0415
    from frazil.config import ServerSettings  # noqa: PLC0415
    from frazil.loader import load_config  # noqa: PLC0415
    from frazil.server.main import ServerThread  # noqa: PLC0415
    from frazil.services.tokens import create_token  # noqa: PLC0415
    from frazil.site.main import build  # noqa: PLC0415
    from frazil.site.main import run as run_site  # noqa: PLC0415
    from frazil.store import Database  # noqa: PLC0415

    out = console()
    example = config.resolve()
    load_config(example)  # refuse a broken config before starting anything
    home = (directory or Path.cwd() / f"frazil-demo-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    home.mkdir(parents=True, exist_ok=True)
    db = Database(db_url or f"sqlite:///{home / 'frazil.db'}")
    db.migrate()
    now = time.time()
    _, user_token = create_token(db, "demo", "user", now=now)
    _, site_token = create_token(db, "local", "site", now=now)
    # the collector may delete the job-temporary files under the demo's own directory only
    settings = ServerSettings(storage_roots=(home / "intermediate",))
    server = ServerThread(db, settings=settings, fast_daemons=True).start()
    out.print(f"server on {server.url}, everything in {shown(home)}")
    stop = threading.Event()
    site = build(_site_config(server.url, site_token, home, example))
    site_thread = threading.Thread(target=run_site, args=(site, stop), name="site", daemon=True)
    site_thread.start()
    client = Client(server.url, user_token)
    ok = False
    try:
        dataset = client.submit(example.read_text(), jobs=jobs, alias=f"demo-{int(now)}")
        deadline = time.monotonic() + timeout
        with Live(console=out, refresh_per_second=4) as live:
            while time.monotonic() < deadline:
                view = client.dataset(dataset)
                live.update(_progress(view))
                if view.dataset.status in ("complete", "errors"):
                    break
                time.sleep(0.5)
        ok = client.dataset(dataset).dataset.status == "complete"
        _summary(client, db, dataset)
    finally:
        stop.set()
        site_thread.join(timeout=10)
        server.stop()
    if not ok:
        out.print("[red]the dataset did not complete[/red]")
        raise typer.Exit(1)
    out.print(
        f"[green]done[/green]: every task of {jobs} jobs complete; outputs in "
        f"{shown(home / 'storage')}"
    )


def _summary(client: Client, db: Database, dataset: int) -> None:
    from rich.table import Table  # noqa: PLC0415

    from frazil.services import queries  # noqa: PLC0415

    out = console()
    rows = queries.permanent_outputs(db, dataset)
    table = Table("output", "bytes", "sha256 (recorded)", "on disk")
    for r in rows:
        path = Path(r.url.removeprefix("file://"))
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
        verdict = "[green]matches[/green]" if actual == r.checksum else "[red]differs[/red]"
        table.add_row(shown(path), str(r.size), shown((r.checksum or "")[:16]) + "…", verdict)
    out.print(table)
    stats = Table("task", "statistic", "count", "sum", "mean")
    for s in client.stats(dataset):
        if s.task_name == "*" and not s.name.endswith(("wall_time", "cpu_time", "max_memory")):
            stats.add_row(
                shown(s.task_name), shown(s.name), str(s.count), f"{s.total:g}", f"{s.mean:g}"
            )
    out.print(stats)
