"""A site whose scratch directory is full: the site lives on, says why, and the work gets done.

The scratch is a small tmpfs (we run as root, so permissions cannot make a directory
unwritable; a full file system can). Mounting needs CAP_SYS_ADMIN: without it the tests skip.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from frazil.store.schema import task, task_attempt
from tests.faults.conftest import PILOT, World, chain_config, check_outcome

pytestmark = pytest.mark.slow

ENOSPC = "No space left on device"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount a tmpfs of a given size at ``tmp_path / name``; unmounted at the end."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {result.stderr}")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def attempts(world: World, dataset_id: int) -> list[tuple[str, str, str, str]]:
    """(task name, site, outcome, error) of every attempt of the dataset."""
    with world.db.read() as conn:
        rows = conn.execute(
            select(task.c.name, task_attempt.c.site, task_attempt.c.outcome,
                   task_attempt.c.error)
            .join(task_attempt, task_attempt.c.task_id == task.c.id)
            .where(task.c.dataset_id == dataset_id)
        ).all()  # fmt: skip
    return [(r.name, r.site, r.outcome, r.error or "") for r in rows]


def test_a_full_scratch_keeps_the_site_alive_and_another_site_runs_its_tasks(
    tmpfs: Callable[[str, str], Path], world: World
) -> None:
    scratch = tmpfs("full", "1m")
    with (scratch / "filler").open("wb") as f, pytest.raises(OSError, match=ENOSPC):
        f.write(b"\0" * 2**21)
    d = world.submit(chain_config(), jobs=4)
    full = world.site("full", scratch=scratch)
    world.wait(lambda: "next try in 2 s" in full.text(), 60, "the full site to back off")
    assert f"round failed, next try in 1 s: [Errno 28] {ENOSPC}" in full.text()
    world.site("good")
    world.wait_done(d, timeout=120)
    outcome = check_outcome(world.db, d, world.storage)
    runs = attempts(world, d)
    assert {s for _, s, o, _ in runs if o == "complete"} == {"good"}
    # what the full site claimed, it handed back, saying why
    handed_back = [(o, e) for _, s, o, e in runs if s == "full"]
    assert handed_back or PILOT, "the full site claimed nothing"
    expected = f"not submitted: [Errno 28] {ENOSPC} (scratch {scratch})"
    assert handed_back == [("unsubmitted", expected)] * len(handed_back), handed_back
    assert outcome.attempts["failed"] == 0, "a full scratch must not count failures"
    assert full.alive, f"the site with the full scratch died:\n{full.text()[-3000:]}"


def test_an_output_bigger_than_the_scratch_fails_and_runs_once_the_scratch_is_fixed(
    tmpfs: Callable[[str, str], Path], world: World
) -> None:
    scratch = tmpfs("small", "1m")
    d = world.submit(chain_config(size=3_000_000), jobs=2)
    site = world.site(scratch=scratch)

    world.wait(
        lambda: any(o == "failed" and ENOSPC in e for _, _, o, e in attempts(world, d)), 60,
        "an attempt to fail on the full scratch",
    )  # fmt: skip
    subprocess.run(["mount", "-o", "remount,size=64m", str(scratch)], check=True)
    world.wait_done(d, timeout=120)
    outcome = check_outcome(world.db, d, world.storage)
    failed = [e for n, _, o, e in attempts(world, d) if o != "complete"]
    assert failed and all(ENOSPC in e for e in failed), failed
    assert any(
        f"OSError: [Errno 28] {ENOSPC}" in e and "module tray[0].gen exited with code 1" in e
        for e in failed
    ), failed
    assert outcome.tasks == 4
    assert site.alive, f"the site died:\n{site.text()[-3000:]}"
    # the big outputs arrived whole
    for job in range(2):
        assert (world.storage / str(job) / "gen.txt").stat().st_size == 3_000_000
