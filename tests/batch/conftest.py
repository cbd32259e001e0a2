"""Helpers for the batch tests: requests in a temporary directory, plugins that clean up."""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from frazil.batch.base import BatchPlugin, BatchState, BatchStatus, JobRequest, load_plugin
from frazil.batch.local import LocalPlugin

# Generous: the tests run real processes on a possibly loaded 2-core machine.
DEADLINE = 20.0
ENDED = {
    BatchState.COMPLETED,
    BatchState.FAILED,
    BatchState.TIMEOUT,
    BatchState.CANCELLED,
    BatchState.VANISHED,
}


def gated(gate: Path, before: str = "", after: str = "") -> str:
    """A shell script that runs ``before``, waits until ``gate`` exists, then runs ``after``."""
    wait = f"while [ ! -e {shlex.quote(str(gate))} ]; do sleep 0.05; done"
    return "; ".join(part for part in (before, wait, after) if part)


@pytest.fixture
def request_for(tmp_path: Path) -> Callable[..., JobRequest]:
    """Build a JobRequest running ``/bin/sh -c SCRIPT`` in ``tmp_path/<name>``."""

    def make(name: str, script: str, **fields: Any) -> JobRequest:
        workdir = tmp_path / name
        return JobRequest(
            name=name,
            argv=["/bin/sh", "-c", script],
            workdir=workdir,
            stdout=workdir / "out.txt",
            stderr=workdir / "err.txt",
            **{"memory": 0.5, **fields},
        )

    return make


@pytest.fixture
def local_plugin(tmp_path: Path) -> Iterator[Callable[..., LocalPlugin]]:
    """Build LocalPlugins over ``tmp_path/state``; whatever they left running is cancelled."""
    made: list[LocalPlugin] = []

    def make(**options: Any) -> LocalPlugin:
        options = {"state_dir": tmp_path / "state", "cpus": 4, "memory": 8.0, **options}
        options.setdefault("kill_grace", 1.0)
        plugin = LocalPlugin(**options)
        made.append(plugin)
        return plugin

    yield make
    for plugin in made:
        plugin.clean_queue([])


LIVE = {"slurm": "FRAZIL_TEST_SLURM", "sge": "FRAZIL_TEST_SGE"}


def live_plugin(name: str) -> BatchPlugin:
    """A plugin for a batch system running on this machine, or skip with the reason."""
    if not os.environ.get(LIVE[name]):
        pytest.skip(
            f"{LIVE[name]} is not set: no {name} here "
            '(scripts/batch-systems start; eval "$(scripts/batch-systems env)")'
        )
    return load_plugin(name, vanish_after=30.0)


@pytest.fixture(
    params=[
        "local",
        pytest.param("slurm", marks=pytest.mark.slurm),
        pytest.param("sge", marks=pytest.mark.sge),
    ]
)
def any_plugin(
    request: pytest.FixtureRequest, local_plugin: Callable[..., LocalPlugin]
) -> Iterator[BatchPlugin]:
    """Every plugin that can run here, for the contract tests."""
    if request.param == "local":
        yield local_plugin()
        return
    plugin = live_plugin(request.param)
    yield plugin
    plugin.clean_queue([])


def wait_for(
    plugin: BatchPlugin,
    ids: Sequence[str],
    states: set[BatchState],
    timeout: float = DEADLINE,
) -> dict[str, BatchStatus]:
    """Poll ``status`` until every id is in one of ``states``; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = plugin.status(ids)
        if all(found[i].state in states for i in ids):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"not in {sorted(states)} after {timeout} s: {found}")
        time.sleep(0.05)


def wait_until(check: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Poll ``check`` until it is true; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met after {timeout} s")
        time.sleep(0.05)
