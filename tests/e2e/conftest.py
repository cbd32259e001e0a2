"""An end-to-end setup: a server and a local site in this process, pilots as real processes."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from frazil.client import Client
from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.site.config import Queue, SiteConfig, Storage
from frazil.site.daemon import SiteDaemon
from frazil.site.main import build, run
from frazil.store import Database
from frazil.wire import Slot
from tests.conftest import BACKENDS, ROOT, fresh_server

MODULE = Path(__file__).parent / "modules" / "work.py"


@dataclass
class World:
    db: Database
    server: ServerThread
    client: Client
    site_token: str
    home: Path
    site: SiteDaemon | None = None
    _stop: threading.Event | None = None
    _thread: threading.Thread | None = None

    def start_site(
        self, plugin: str = "local", resources: Slot | None = None,
        system: dict[str, str] | None = None, **queue: Any,
    ) -> SiteDaemon:  # fmt: skip
        options = {"cpus": 4, "memory": 8.0, "gpus": 1} if plugin == "local" else {}
        options.update(queue.pop("options", {}))
        config = SiteConfig(
            name="local",
            server=self.server.url,
            token=self.site_token,
            queue=Queue(
                **{
                    "plugin": plugin,
                    "max_queued": 4,
                    "claim_batch": 4,
                    "poll_interval": 0.2,
                    "heartbeat": 0.5,
                    "options": options,
                    **queue,
                }
            ),
            resources=resources or Slot(cpu=1, gpu=1, memory=2.0, disk=5.0, time=1.0),
            system={
                "storage": f"file://{self.home / 'storage'}",
                "module": str(MODULE),
                **(system or {}),
            },
            storage=Storage(scratch=self.home / "scratch"),
        )
        self.site = build(config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=run, args=(self.site, self._stop), daemon=True)
        self._thread.start()
        return self.site

    def stop_site(self, cancel: bool = False) -> None:
        assert self._stop is not None and self._thread is not None
        self._stop.set()
        self._thread.join(timeout=20)
        if cancel and self.site is not None and self.site.running:
            # leave no batch jobs behind for the next test's scheduler slots
            self.site.plugin.cancel(list(self.site.running))

    def wait(self, check: Callable[[], bool], timeout: float = 90.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what or check}")

    def status(self, dataset: int) -> dict[str, Any]:
        return self.client.dataset(dataset)

    def explain(self, dataset: int) -> str:
        """The errors of a dataset's tasks that did not complete (for assertion messages)."""
        lines = []
        for t in self.client.tasks(dataset, limit=1000):
            if t.status != "complete":
                errors = [a.error for a in self.client.task(t.id).attempts if a.error]
                lines.append(f"{t.name} job {t.job_index}: {t.status} {errors[-3:]}")
        return "\n".join(lines)

    def wait_done(self, dataset: int, timeout: float = 90.0) -> str:
        self.wait(
            lambda: self.status(dataset).dataset.status in ("complete", "errors"),
            timeout, f"dataset {dataset} to finish",
        )  # fmt: skip
        return str(self.status(dataset).dataset.status)


def config(*tasks: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A dataset config whose tasks run the test module."""
    return {
        "description": "end-to-end test",
        "options": {"max_failures": 3, **options},
        "tasks": list(tasks),
    }


def task(name: str, args: str, depends: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "depends": list(depends),
        "requirements": {"memory": 1.0, "time": 0.5},
        "trays": [{"modules": [{"name": name, "src": "$system(module)", "args": args}]}],
        **extra,
    }


@pytest.fixture
def sqlite_world(tmp_path: Path, sqlite_template: Path) -> Iterator[World]:
    """A world on SQLite only (for the suites that multiply by something else)."""
    path = tmp_path / "frazil.db"
    shutil.copy(sqlite_template, path)
    yield from make_world(Database(f"sqlite:///{path}"), tmp_path)


def make_world(db: Database, home: Path) -> Iterator[World]:
    db.migrate()
    now = time.time()
    _, user = create_token(db, "tester", "user", now=now)
    _, site_token = create_token(db, "local", "site", now=now)
    server = ServerThread(db, fast_daemons=True).start()
    world = World(db, server, Client(server.url, user, retry_for=5), site_token, home)
    yield world
    if world._stop is not None:
        world.stop_site(cancel=True)
    server.stop()


@pytest.fixture(params=BACKENDS[:2])  # SQLite and PostgreSQL
def world(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[World]:
    if request.param == "sqlite":
        path = tmp_path / "frazil.db"
        shutil.copy(sqlite_template, path)
        db = Database(f"sqlite:///{path}")
    else:
        db = fresh_server(request.param)
    yield from make_world(db, tmp_path)


__all__ = ["MODULE", "ROOT", "World", "config", "task"]
