"""The site daemon on real schedulers: Slurm and Grid Engine running on this machine.

Run with ``scripts/batch-systems start`` done and ``eval "$(scripts/batch-systems env)"``;
otherwise each test skips with the reason.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from sqlalchemy import select

from frazil.store.schema import task_attempt
from frazil.wire import Slot
from tests.conftest import ROOT
from tests.e2e.conftest import World, config, task

SYSTEMS = [
    pytest.param("slurm", marks=pytest.mark.slurm),
    pytest.param("sge", marks=pytest.mark.sge),
]
ENV = {"slurm": "FRAZIL_TEST_SLURM", "sge": "FRAZIL_TEST_SGE"}
CANCEL = {"slurm": ["scancel"], "sge": ["qdel"]}


@pytest.fixture(params=SYSTEMS)
def system(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if not os.environ.get(ENV[name]):
        pytest.skip(f"{ENV[name]} is not set: no {name} here (scripts/batch-systems start)")
    return name


def batch_id(world: World, task_id: int) -> str:
    with world.db.read() as conn:
        return str(
            conn.execute(
                select(task_attempt.c.batch_id)
                .where(task_attempt.c.task_id == task_id)
                .order_by(task_attempt.c.number.desc())
            ).first()[0]  # type: ignore[index]
        )


def test_gpu_and_cpu_tasks_run_through_the_scheduler(sqlite_world: World, system: str):
    world = sqlite_world
    world.start_site(system)
    cfg = config(
        task("on_gpu", "--out g", requirements={"memory": 0.5, "time": 0.5, "gpu": 1}),
        task("on_cpu", "--out c", requirements={"memory": 0.5, "time": 0.5}),
    )
    d = world.client.submit(cfg, jobs=2)
    assert world.wait_done(d, 180) == "complete"
    stats = {(s.task_name, s.name): s for s in world.client.stats(d)}
    if system == "slurm":  # Slurm gives the GPU task CUDA_VISIBLE_DEVICES; SGE sets nothing
        assert stats[("on_gpu", "gpus_seen")].minimum == 1.0
    assert stats[("on_cpu", "gpus_seen")].maximum == 0.0
    if system == "sge":  # the GPU task asked for the gpu consumable, the CPU task did not
        gpu_job = batch_id(world, world.client.tasks(d, name="on_gpu")[0].id)
        cpu_job = batch_id(world, world.client.tasks(d, name="on_cpu")[0].id)
        assert "gpu=1" in _qacct(gpu_job) and "gpu=" not in _qacct(cpu_job)


def _qacct(job: str) -> str:
    for _ in range(50):  # SGE writes the record a moment after the job ends
        result = subprocess.run(["qacct", "-j", job], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return next(line for line in result.stdout.splitlines() if line.startswith("category"))
        time.sleep(0.2)
    raise AssertionError(f"no accounting record for SGE job {job}")


def test_the_simulation_chain_completes(sqlite_world: World, system: str):
    world = sqlite_world
    software = ROOT / "examples" / "simulation"
    world.start_site(
        system,
        Slot(cpu=1, gpu=1, memory=4.0, disk=10.0, time=4.0),
        system={
            "software": str(software),
            "gcd_dir": str(software / "gcd"),
            "scratch_url": f"file://{world.home / 'intermediate'}",
        },
    )
    example = (ROOT / "examples" / "simulation.yaml").read_text()
    example = example.replace("nevents: 2000 ", "nevents: 200  ")
    d = world.client.submit(example, jobs=2)
    assert world.wait_done(d, 300) == "complete", world.explain(d)
    assert len(list((world.home / "storage").rglob("level2_*.jsonl"))) == 2


def test_walltime_kills_are_resets_that_ask_for_more_time(sqlite_world: World, system: str):
    world = sqlite_world
    world.start_site(system)
    cfg = config(task("slow", "--out x --sleep 600", requirements={"memory": 0.5, "time": 0.002}))
    d = world.client.submit(cfg)
    (t,) = world.client.tasks(d)
    world.wait(lambda: world.client.task(t.id).task.attempts >= 2, 240, "a second attempt")
    first = world.client.task(t.id).attempts[0]
    assert first.outcome == "timeout"
    assert any(w in first.error.lower() for w in ("walltime", "timeout", "h_rt"))
    # the next attempt asks for 1.5 times what this one ran (or requested, if unmeasured)
    measured = (first.wall_time or 0.002 * 3600) / 3600
    assert world.client.tasks(d)[0].time == pytest.approx(1.5 * max(measured, 0.002), rel=0.01)
    world.client.act(d, "suspend", reason="enough")


def test_suspending_a_dataset_removes_its_batch_jobs(sqlite_world: World, system: str):
    world = sqlite_world
    world.start_site(system)
    d = world.client.submit(config(task("long", "--out x --sleep 600")))
    (t,) = world.client.tasks(d)
    world.wait(lambda: world.client.tasks(d)[0].status == "processing", 120, "processing")
    job = batch_id(world, t.id)
    world.client.act(d, "suspend", reason="cancel it")
    plugin = world.site.plugin  # type: ignore[union-attr]
    # Gone from the queue: SGE's accounting may lag behind qdel (the job then reads
    # "unknown" until qacct has it), so what counts is that it no longer waits or runs.
    world.wait(
        lambda: plugin.status([job])[job].state.value not in ("pending", "running", "held"),
        60, "the batch job to leave the queue",
    )  # fmt: skip
    world.wait(lambda: job not in world.site.running, 30, "the site to forget the job")  # type: ignore[union-attr]


def test_a_batch_job_killed_from_outside_is_retried(sqlite_world: World, system: str):
    world = sqlite_world
    world.start_site(system)
    d = world.client.submit(config(task("victim", "--out x --sleep 8")))
    (t,) = world.client.tasks(d)
    world.wait(lambda: world.client.tasks(d)[0].status == "processing", 120, "processing")
    subprocess.run([*CANCEL[system], batch_id(world, t.id)], check=True, capture_output=True)
    assert world.wait_done(d, 240) == "complete"
    attempts = world.client.task(t.id).attempts
    assert len(attempts) >= 2 and attempts[-1].outcome == "complete"
    assert attempts[0].outcome in ("cancelled", "preempted", "failed")


def test_the_site_backs_off_while_the_scheduler_is_down(sqlite_world: World, system: str):
    world = sqlite_world
    script = ROOT / "scripts" / "batch-systems"
    world.start_site(system)
    subprocess.run([str(script), "stop", system], check=True, capture_output=True, timeout=120)
    try:
        d = world.client.submit(config(task("later", "--out x")))
        time.sleep(5)
        assert world.client.tasks(d)[0].status in ("waiting", "queued")
    finally:
        subprocess.run([str(script), "start", system], check=True, capture_output=True, timeout=300)
    assert world.wait_done(d, 300) == "complete"


def test_a_whole_job_runs_as_a_batch_side_dag(sqlite_world: World, system: str):
    world = sqlite_world
    cfg = config(
        task("a", "--out a --sleep 5"),
        task("b", "--out b", depends=("a",)),
        task("c", "--out c", depends=("a",)),
        task("d", "--out d", depends=("b", "c")),
    )
    d = world.client.submit(cfg, jobs=2)
    site = world.start_site(f"{system}::dag", max_queued=8, claim_batch=8)
    # every task of a job is in the batch system at once, held by its dependencies
    world.wait(lambda: len(site.running) == 8, 60, "the jobs' DAGs to be submitted")
    assert world.wait_done(d, 240) == "complete", world.explain(d)
    for t in world.client.tasks(d):
        (attempt,) = world.client.task(t.id).attempts
        assert attempt.site == "local" and attempt.outcome == "complete"
