"""A site daemon over the fakes of ``frazil.testing``: no server, no batch system."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from frazil.site.config import Queue, SiteConfig, Storage
from frazil.site.daemon import SiteDaemon
from frazil.testing import FakeBatch, FakeClient
from frazil.wire import Claim, DagTask, JobClaim, Slot

PILOT = ("pilot",)
MakeSite = Callable[..., SiteDaemon]


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def batch() -> FakeBatch:
    return FakeBatch()


@pytest.fixture
def make_site(tmp_path: Path, client: FakeClient, batch: FakeBatch) -> MakeSite:
    """A daemon (``cpu=`` for its slot, the rest ``[queue]`` options); built again, it
    reads the state file its predecessor left."""

    def make(*, cpu: int = 1, **queue: Any) -> SiteDaemon:
        config = SiteConfig(
            name="s", server="http://frazil.test", token="t",
            queue=Queue(**{"plugin": "fake", "max_queued": 8, "claim_batch": 8, **queue}),
            resources=Slot(cpu=cpu, memory=2.0, disk=5.0, time=1.0),
            storage=Storage(scratch=tmp_path / "scratch"),
        )  # fmt: skip
        return SiteDaemon(config, client, batch, pilot=PILOT)  # type: ignore[arg-type]

    return make


def claim(task_id: int, attempt: int = 1) -> Claim:
    return Claim(task_id, attempt, f"pk-{task_id}-{attempt}", 7, 0, 0, f"t{task_id}",
                 1, 0, 1.0, 1.0, 1.0)  # fmt: skip


def dag_task(task_id: int, *parents: int, attempt: int = 0) -> DagTask:
    return DagTask(
        task_id, task_id, f"t{task_id}", parents, 1, 0, 1.0, 1.0, 1.0, attempt=attempt,
        passkey=f"pk-{task_id}" if attempt else "", reservation="" if attempt else f"rv-{task_id}",
    )  # fmt: skip


def job_claim(*tasks: DagTask, job_index: int = 0) -> JobClaim:
    return JobClaim(7, job_index, tasks)
