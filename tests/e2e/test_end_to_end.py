"""Real processes over real HTTP on loopback: server, site daemon, local batch jobs, pilots."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from frazil.batch.local_runner import pid_alive
from frazil.client import PilotClient
from frazil.store.schema import file, task_attempt
from frazil.wire import Finish
from tests.conftest import store_unchecked
from tests.e2e.conftest import ROOT, World, config, task


def _file(name: str) -> dict[str, str]:
    return {"remote": f"$system(storage)/$args(job)/{name}", "local": name}


def test_a_dataset_completes_with_outputs_checksums_stats_and_logs(world: World):
    world.start_site()
    cfg = config(
        task("first", "--out a.txt --value 2", data=[{**_file("a.txt"), "movement": "output"}]),
        task("second", "--out b.txt --input a.txt --value 3", depends=("first",), data=[
            {**_file("a.txt"), "movement": "input"}, {**_file("b.txt"), "movement": "output"}]),
    )  # fmt: skip
    d = world.client.submit(cfg, jobs=3)
    assert world.wait_done(d) == "complete"
    for job in range(3):
        for name in ("a.txt", "b.txt"):
            assert (world.home / "storage" / str(job) / name).read_text().startswith("value")
    with world.db.read() as conn:
        rows = conn.execute(select(file.c.url, file.c.checksum).where(file.c.dataset_id == d)).all()
    assert len(rows) == 6
    for r in rows:
        path = Path(r.url.removeprefix("file://"))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == r.checksum
    stats = {(s.task_name, s.name): s for s in world.client.stats(d)}
    assert stats[("*", "value")].total == 3 * (2 + 3)
    t = world.client.tasks(d, name="second", job=0)[0]
    detail = world.client.task(t.id)
    (a,) = detail.attempts
    assert a.outcome == "complete" and a.host and a.batch_id.startswith("local-")
    assert a.wall_time > 0 and a.cpu_time > 0 and a.max_memory > 0
    logs = {log.name: log.text for log in world.client.logs(t.id)}
    assert "done b.txt" in logs["stdout"] and "staged in" in logs["pilot"]
    assert not list((world.home / "scratch").glob("*/*/*/task")), "scratch directories remain"


def test_a_module_that_fails_once_is_retried(world: World):
    world.start_site()
    marker = world.home / "marker"
    d = world.client.submit(config(task("flaky", f"--out x --fail-times 1 --marker {marker}")))
    assert world.wait_done(d) == "complete"
    (t,) = world.client.tasks(d)
    detail = world.client.task(t.id)
    assert [a.outcome for a in detail.attempts] == ["failed", "complete"]
    assert "failing on purpose (1 of 1)" in detail.attempts[0].error
    assert detail.attempts[0].exit_code == 1


def test_a_module_that_always_fails_ends_failed(world: World):
    world.start_site()
    marker = world.home / "marker"
    d = world.client.submit(config(task("broken", f"--out x --fail-times 99 --marker {marker}")))
    assert world.wait_done(d) == "errors"
    (t,) = world.client.tasks(d)
    assert t.status == "failed" and t.failures == 3
    assert marker.read_text() == "3"


def test_debug_mode_suspends_on_failure(world: World):
    world.start_site()
    marker = world.home / "marker"
    d = world.client.submit(
        config(task("broken", f"--out x --fail-times 99 --marker {marker}"), debug=True)
    )
    world.wait(lambda: world.client.tasks(d)[0].status == "suspended", what="suspension")
    time.sleep(1.0)
    assert marker.read_text() == "1"  # not retried


def _pilot_pid(world: World) -> int:
    """The pid of the running pilot process (the local plugin's job)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"frazil.pilot" in cmdline and str(world.home).encode() in b" ".join(cmdline):
            return int(proc.name)
    raise AssertionError("no pilot process found")


def test_a_sigkilled_pilots_module_tree_dies_with_it(sqlite_world: World):
    """A single-task pilot on the local plugin is SIGKILLed while its module runs a tree of
    processes in sessions of their own that ignore SIGTERM: all of them are gone within
    seconds, so the retry does not share the slot with them."""
    world = sqlite_world
    pidfile = world.home / "pids"
    tree = ROOT / "tests" / "data" / "process_tree.py"
    d = world.client.submit(config({
        "name": "tree", "requirements": {"memory": 1.0, "time": 0.5},
        "trays": [{"modules": [{"src": str(tree), "args": f"{pidfile} 3"}]}],
    }))  # fmt: skip
    world.start_site()
    world.wait(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 3, what="tree")
    pids = [int(p) for p in pidfile.read_text().split()]
    assert world.client.tasks(d)[0].status == "processing"
    os.kill(_pilot_pid(world), signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in pids if pid_alive(p)]
    for p in left:  # leave nothing behind for the next test, whatever happened
        os.kill(p, signal.SIGKILL)
    assert not left, "the killed pilot's module processes lived on"


def test_a_killed_pilot_is_found_by_its_heartbeat_timeout(world: World):
    cfg = config(task("slow", "--out x --sleep 3"), timeouts={"heartbeat": "3s"})
    d = world.client.submit(cfg)
    world.start_site()
    world.wait(lambda: world.client.tasks(d)[0].status == "processing", what="processing")
    world.stop_site()  # the site would notice the dead batch job first; leave it to the watchdog
    os.kill(_pilot_pid(world), signal.SIGKILL)
    world.wait(lambda: world.client.tasks(d)[0].status == "waiting", 30, "the watchdog's reset")
    (t,) = world.client.tasks(d)
    attempt = world.client.task(t.id).attempts[0]
    assert attempt.outcome == "timeout" and "no heartbeat" in attempt.error
    world.start_site()
    assert world.wait_done(d) == "complete"


def test_a_dead_batch_job_is_reported_by_the_site(world: World):
    d = world.client.submit(config(task("slow", "--out x --sleep 5")))
    world.start_site()
    world.wait(lambda: world.client.tasks(d)[0].status == "processing", what="processing")
    os.kill(_pilot_pid(world), signal.SIGKILL)
    world.wait(lambda: world.client.tasks(d)[0].attempts == 2, 30, "a second attempt")
    (t,) = world.client.tasks(d)
    first = world.client.task(t.id).attempts[0]
    assert first.outcome == "failed" and "exit code 137" in first.error
    assert "without a report from its pilot" in first.error
    assert world.wait_done(d) == "complete"


def test_a_stale_pilot_cannot_change_a_reset_task(world: World):
    d = world.client.submit(config(task("slow", "--out x --sleep 4")))
    world.start_site()
    world.wait(lambda: world.client.tasks(d)[0].status == "processing", what="processing")
    (t,) = world.client.tasks(d)
    with world.db.read() as conn:
        first = conn.execute(
            select(task_attempt.c.number).where(task_attempt.c.task_id == t.id)
        ).scalar_one()
    world.client.act(d, "reset", task_id=t.id, reason="test")
    assert world.wait_done(d) == "complete"
    detail = world.client.task(t.id)
    assert detail.attempts[0].outcome == "reset"
    assert detail.attempts[-1].outcome == "complete" and len(detail.attempts) >= 2
    old = PilotClient(world.server.url, t.id, first, "an-old-passkey", retry_for=0)
    with pytest.raises(Exception):  # noqa: B017 - a wrong passkey or a stale attempt, either refused
        old.finish(Finish())
    assert world.client.task(t.id).task.status == "complete"


def test_an_input_with_a_wrong_checksum_fails_clearly(world: World):
    out = {"remote": "$system(storage)/$args(job)/a.txt", "local": "a.txt"}
    cfg = config(
        task("producer", "--out a.txt", data=[{**out, "movement": "output"}]),
        task("consumer", "--out b.txt --input a.txt", depends=("producer",),
             data=[{**out, "movement": "input"}]),
        max_failures=1,
    )  # fmt: skip
    d = world.client.submit(cfg)
    world.client.act(d, "suspend", task="consumer")
    world.start_site()
    world.wait(lambda: world.client.tasks(d, name="producer")[0].status == "complete")
    (world.home / "storage" / "0" / "a.txt").write_text("tampered")
    world.client.act(d, "resume", task="consumer")
    assert world.wait_done(d) == "errors"
    consumer = world.client.tasks(d, name="consumer")[0]
    error = world.client.task(consumer.id).attempts[-1].error
    assert "sha256" in error and "a.txt" in error


def test_sigterm_from_the_batch_system_is_a_reset_not_a_failure(world: World):
    d = world.client.submit(config(task("slow", "--out x --sleep 3")))
    world.start_site()
    world.wait(lambda: world.client.tasks(d)[0].status == "processing", what="processing")
    os.kill(_pilot_pid(world), signal.SIGTERM)
    assert world.wait_done(d) == "complete"
    (t,) = world.client.tasks(d)
    detail = world.client.task(t.id)
    assert [a.outcome for a in detail.attempts] == ["preempted", "complete"]
    assert "SIGTERM" in detail.attempts[0].error
    assert detail.task.failures == 0


def test_an_external_python_module_class_runs_in_the_pilot(world: World):
    world.start_site()
    module = Path(__file__).parent / "modules" / "counting.py"
    cfg = config({
        "name": "count",
        "requirements": {"memory": 1.0, "time": 0.5},
        "trays": [{"iterations": 2, "modules": [{
            "name": "count", "class": "counting:Count", "url": str(module),
            "parameters": {"n": "$eval($args(job) * 10 + $args(iter))"},
        }]}],
    })  # fmt: skip
    d = world.client.submit(cfg, jobs=2)
    assert world.wait_done(d) == "complete"
    stats = {(s.task_name, s.name): s for s in world.client.stats(d)}
    # job 0: 0 + 1; job 1: 10 + 11
    assert stats[("count", "counted")].total == 22.0
    assert stats[("count", "counted")].count == 2


def test_suspending_a_dataset_cancels_its_batch_jobs(world: World):
    d = world.client.submit(config(task("long", "--out x --sleep 60")))
    world.start_site()
    world.wait(lambda: world.client.tasks(d)[0].status == "processing", what="processing")
    pid = _pilot_pid(world)
    world.client.act(d, "suspend", reason="stop it")
    world.wait(lambda: not Path(f"/proc/{pid}").exists(), 30, "the pilot to be stopped")
    site = world.site
    assert site is not None
    # the pilot dies while the plugin's cancel still runs; the site forgets the job after it
    world.wait(lambda: site.running == {}, 10, "the site to forget the batch job")
    (t,) = world.client.tasks(d)
    assert t.status == "suspended"
    assert world.client.task(t.id).attempts[0].outcome == "suspended"


def test_a_spec_that_cannot_be_resolved_is_one_located_line_on_a_single_task_site(world: World):
    d = world.client.submit(config(task("work", "--out w.txt")), jobs=3)
    bad_args = "--out w.txt --value $eval(1/($args(job)-1))"
    store_unchecked(world.db, d, config(task("work", bad_args)))
    world.start_site()
    world.wait(lambda: world.status(d).dataset.jobs_complete == 2, 90, world.explain(d))
    assert world.status(d).dataset.jobs_failed == 1
    (bad,) = world.client.tasks(d, job=1)
    detail = world.client.task(bad.id)
    assert (detail.task.status, detail.task.failures) == ("failed", 1)  # at once
    (attempt,) = detail.attempts
    assert attempt.error == (
        "the task's spec cannot be resolved: tasks[0].trays[0].modules[0].args: division by "
        "zero in '--out w.txt --value $eval(1/($args(job)-1))' at column 21"
    )
