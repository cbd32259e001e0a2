"""Multi-task pilots end to end: a site in ``pilot = "multi"`` mode, real pilot processes."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import httpx
from sqlalchemy import select

from frazil.store.schema import file, pilot, task_attempt
from frazil.wire import Slot
from tests.conftest import store_unchecked
from tests.e2e.conftest import World, config, task

SLOT = Slot(cpu=2, gpu=1, memory=4.0, disk=5.0, time=1.0)


def _file(name: str) -> dict[str, str]:
    return {"remote": f"$system(storage)/$args(job)/{name}", "local": name}


def _pilot_pid(world: World, pilot_id: int) -> int:
    """The pid of a multi-task pilot's process."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:
            continue
        ours = str(world.home).encode() in b" ".join(argv)
        if (
            ours
            and b"--pilot" in argv
            and argv[argv.index(b"--pilot") + 1] == str(pilot_id).encode()
        ):
            return int(proc.name)
    raise AssertionError(f"no process for pilot {pilot_id}")


def _start(world: World, **queue: object) -> None:
    world.start_site(resources=SLOT, pilot="multi", pilot_idle=2.0, **queue)


def test_pilots_run_many_tasks_each_with_outputs_checksums_and_logs(world: World):
    _start(world, max_queued=2)
    cfg = config(
        task("first", "--out a.txt --value 2", data=[{**_file("a.txt"), "movement": "output"}]),
        task("second", "--out b.txt --input a.txt --value 3", depends=("first",), data=[
            {**_file("a.txt"), "movement": "input"}, {**_file("b.txt"), "movement": "output"}]),
    )  # fmt: skip
    d = world.client.submit(cfg, jobs=6)
    assert world.wait_done(d) == "complete", world.explain(d)
    with world.db.read() as conn:
        files = conn.execute(select(file.c.url, file.c.checksum).where(file.c.dataset_id == d))
        for r in files.all():
            path = Path(r.url.removeprefix("file://"))
            assert hashlib.sha256(path.read_bytes()).hexdigest() == r.checksum
        ran = conn.execute(select(task_attempt.c.pilot_id, task_attempt.c.outcome)).all()
    assert len(ran) == 12 and all(r.outcome == "complete" for r in ran)
    used = {r.pilot_id for r in ran}
    assert None not in used and len(used) <= 2  # two pilots ran all 12
    t = world.client.tasks(d, name="second", job=4)[0]
    logs = {log.name: log.text for log in world.client.logs(t.id)}
    assert "done b.txt" in logs["stdout"] and "staged in" in logs["pilot"]
    # idle pilots end by themselves and say why
    world.wait(
        lambda: all(p["state"] == "ended" for p in world.client.request("GET", "/pilots")),
        30, "the pilots to end",
    )  # fmt: skip
    reasons = {p["reason"] for p in world.client.request("GET", "/pilots")}
    assert all("idle" in r for r in reasons), reasons


def test_a_gpu_task_gets_the_pilots_gpu_and_cpu_tasks_do_not(world: World):
    _start(world, max_queued=1)
    gpu = task("gpu", "--out g.txt", requirements={"gpu": 1, "memory": 1.0, "time": 0.5})
    cpu = task("cpu", "--out c.txt")
    d = world.client.submit(config(gpu, cpu), jobs=2)
    assert world.wait_done(d) == "complete", world.explain(d)
    seen = {(s.task_name): s for s in world.client.stats(d) if s.name == "gpus_seen"}
    assert seen["gpu"].total == 2 and seen["cpu"].total == 0


def test_a_killed_pilot_hands_its_tasks_back_and_they_complete(world: World):
    _start(world, max_queued=1)
    d = world.client.submit(config(task("slow", "--out s.txt --sleep 3")), jobs=2)
    world.wait(
        lambda: len(world.client.tasks(d, status="processing")) == 2, 60, "both tasks to run"
    )
    (first,) = [p for p in world.client.request("GET", "/pilots") if p["state"] == "open"]
    os.kill(_pilot_pid(world, first["id"]), signal.SIGKILL)
    assert world.wait_done(d, timeout=120) == "complete", world.explain(d)
    outcomes = sorted(
        a.outcome for t in world.client.tasks(d) for a in world.client.task(t.id).attempts
    )
    assert outcomes == ["complete", "complete", "failed", "failed"]
    with world.db.read() as conn:
        ended = conn.execute(select(pilot.c.reason).where(pilot.c.id == first["id"])).scalar_one()
    assert "killed" in ended or "signal" in ended or "failed" in ended, ended


def test_exchange_needs_the_pilots_own_key(world: World):
    _start(world, max_queued=1)
    d = world.client.submit(config(task("one", "--out o.txt")), jobs=1)
    assert world.wait_done(d) == "complete"
    (p,) = world.client.request("GET", "/pilots")
    url = f"{world.server.url}/pilots/{p['id']}/exchange"
    for auth in ({}, {"Authorization": "Pilot wrong"}, {"Authorization": "Bearer x"}):
        r = httpx.post(url, json={"limit": 1}, headers=auth)
        assert r.status_code in (401, 403), (auth, r.text)


VERSIONED = """\
from frazil.pilot.modules import Module


class Versioned(Module):
    def run(self, stats):
        print("version VERSION says hello")
        stats["version"] = VERSION
"""


def test_a_long_lived_pilot_runs_each_tasks_module_code_as_it_is_now(sqlite_world: World):
    """The module is edited between two tasks that one multi-task pilot runs: the second
    task runs the new code, and what the class prints is in each task's log."""
    world = sqlite_world
    code = world.home / "versioned.py"
    code.write_text(VERSIONED.replace("VERSION", "1"))
    world.start_site(resources=SLOT, pilot="multi", pilot_idle=60.0, max_queued=1)
    cfg = config({
        "name": "v", "requirements": {"memory": 1.0, "time": 0.5},
        "trays": [{"modules": [{"name": "v", "class": "versioned:Versioned", "url": str(code)}]}],
    })  # fmt: skip
    first = world.client.submit(cfg)
    assert world.wait_done(first) == "complete", world.explain(first)
    code.write_text(VERSIONED.replace("VERSION", "2") + "# edited\n")
    second = world.client.submit(cfg)
    assert world.wait_done(second) == "complete", world.explain(second)
    with world.db.read() as conn:
        pilots = conn.execute(select(task_attempt.c.pilot_id)).scalars().all()
    assert len(pilots) == 2 and len(set(pilots)) == 1 and None not in pilots  # one pilot
    for d, version in ((first, 1), (second, 2)):
        stats = {s.name: s for s in world.client.stats(d) if s.task_name == "v"}
        assert stats["version"].total == version
        (t,) = world.client.tasks(d)
        logs = {log.name: log.text for log in world.client.logs(t.id)}
        assert f"version {version} says hello" in logs["stdout"]


def test_a_task_whose_spec_fails_fails_alone_and_the_pilot_goes_on(world: World):
    # one pilot of 3 cores: jobs 0-2 run first; the exchange that reports them would hand
    # out job 5, whose spec divides by zero (a job validation did not check)
    work = task("work", "--out w.txt --sleep 0.5")
    d = world.client.submit(config(work), jobs=9)
    poison = task("work", "--out w.txt --sleep 0.5 --value $eval(1/($args(job)-5))")
    store_unchecked(world.db, d, config(poison))
    world.start_site(resources=Slot(cpu=3, memory=6.0, disk=5.0, time=1.0),
                     pilot="multi", pilot_idle=2.0, max_queued=1)  # fmt: skip
    world.wait(lambda: world.status(d).dataset.jobs_complete == 8, 90, world.explain(d))
    view = world.status(d).dataset
    assert (view.status, view.jobs_failed) == ("errors", 1)
    (bad,) = world.client.tasks(d, job=5)
    detail = world.client.task(bad.id)
    assert (detail.task.status, detail.task.failures) == ("failed", 1)
    (attempt,) = detail.attempts
    assert attempt.error == (
        "the task's spec cannot be resolved: tasks[0].trays[0].modules[0].args: division by "
        "zero in '--out w.txt --sleep 0.5 --value $eval(1/($args(job)-5))' at column 33"
    )
    # the dataset's audit trail says why
    events = world.client.request("GET", f"/datasets/{d}/events")
    (failed,) = [e for e in events if e["object_id"] == str(bad.id)]
    assert (failed["action"], failed["new_status"]) == ("failed", "failed")
    assert failed["reason"] == attempt.error
    # every other task ran once, its completion kept: nothing ran twice
    with world.db.read() as conn:
        outcomes = conn.execute(select(task_attempt.c.outcome)).scalars().all()
    assert sorted(outcomes) == ["complete"] * 8 + ["failed"]
