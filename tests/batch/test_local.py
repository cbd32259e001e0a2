"""The local plugin, running real jobs on this machine."""

from __future__ import annotations

import json
import os
import pickle
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from frazil.batch.base import BatchState, JobRequest
from frazil.batch.local import LocalPlugin
from frazil.batch.local_runner import pid_alive
from frazil.batch.run import run_command
from frazil.errors import BatchError
from tests.batch.conftest import ENDED, gated, wait_for, wait_until
from tests.conftest import ROOT

Plugin = Callable[..., LocalPlugin]
Request = Callable[..., JobRequest]
PY = shlex.quote(sys.executable)


def test_death_by_signal_is_failed_with_128_plus_the_signal(
    local_plugin: Plugin, request_for: Request
) -> None:
    plugin = local_plugin()
    (job,) = plugin.submit([request_for("killed", "kill -9 $$")])
    status = wait_for(plugin, [job], ENDED)[job]
    assert (status.state, status.exit_code) == (BatchState.FAILED, 128 + 9)
    assert "SIGKILL" in status.reason


def test_walltime_expiry_is_timeout_not_failure(local_plugin: Plugin, request_for: Request) -> None:
    plugin = local_plugin(kill_grace=0.5)
    request = request_for("slow", "sleep 30", walltime=0.0003)  # about 1 s
    started = time.monotonic()
    (job,) = plugin.submit([request])
    status = wait_for(plugin, [job], ENDED)[job]
    assert status.state is BatchState.TIMEOUT
    assert 1.0 <= time.monotonic() - started < 15
    assert "walltime" in request.stderr.read_text()


def test_cancel_waits_for_the_end_and_never_starts_a_queued_job(
    local_plugin: Plugin, request_for: Request, tmp_path: Path
) -> None:
    plugin = local_plugin(cpus=1)
    running = request_for("running", "echo $$ > pid; exec sleep 30")
    queued = request_for("queued", "echo ran")
    ids = plugin.submit([running, queued])
    pidfile = running.workdir / "pid"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
    started = time.monotonic()
    plugin.cancel(ids)
    assert time.monotonic() - started < 1.0 + 2.0  # kill_grace + 2 s at most
    # No polling: cancel returned once the end was recorded.
    found = plugin.status(ids)
    assert [found[i].state for i in ids] == [BatchState.CANCELLED] * 2
    wait_until(lambda: not pid_alive(int(pidfile.read_text())))
    assert not queued.stdout.exists()


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace(
    local_plugin: Plugin, request_for: Request
) -> None:
    plugin = local_plugin(kill_grace=0.5)
    request = request_for("stubborn", "trap '' TERM; echo $$ > pid; while :; do sleep 0.05; done")
    (job,) = plugin.submit([request])
    pidfile = request.workdir / "pid"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
    plugin.cancel([job])
    status = plugin.status([job])[job]
    assert (status.state, status.exit_code) == (BatchState.CANCELLED, 128 + 9)
    wait_until(lambda: not pid_alive(int(pidfile.read_text())))


def test_a_dead_runner_vanishes_and_takes_its_command_along(
    local_plugin: Plugin, request_for: Request, tmp_path: Path
) -> None:
    plugin = local_plugin()
    request = request_for("orphan", "echo $$ > pid; exec sleep 30")
    (job,) = plugin.submit([request])
    pidfile = request.workdir / "pid"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
    runner = json.loads((tmp_path / "state" / f"{job}.job.json").read_text())["pid"]
    os.kill(runner, signal.SIGKILL)
    status = wait_for(plugin, [job], ENDED)[job]
    assert status.state is BatchState.VANISHED  # never "completed" on a guess
    wait_until(lambda: not pid_alive(int(pidfile.read_text())))


def test_gpus_are_assigned_from_the_pool_and_hidden_from_cpu_jobs(
    local_plugin: Plugin, request_for: Request, tmp_path: Path
) -> None:
    plugin = local_plugin(gpus=2)
    gate = tmp_path / "gate"
    show = 'printf %s "${CUDA_VISIBLE_DEVICES-unset}" > cuda.txt'
    requests = [
        request_for("gpu-a", gated(gate, before=show), gpu=1),
        request_for("gpu-b", gated(gate, before=show), gpu=1),
        request_for("cpu", show),
        request_for("gpu-c", show, gpu=1),  # no GPU free until a gated job ends
    ]
    ids = plugin.submit(requests)
    wait_for(plugin, ids[2:3], ENDED)
    assert plugin.status(ids[3:])[ids[3]].state is BatchState.PENDING
    # the gated jobs write their file as they start, maybe after the CPU job ended
    files = [r.workdir / "cuda.txt" for r in requests[:3]]
    deadline = time.monotonic() + 30

    def written() -> bool:
        gpu_files = all(f.exists() and f.stat().st_size > 0 for f in files[:2])
        return gpu_files and files[2].exists()

    while not written() and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = [f.read_text() for f in files]
    assert sorted(seen[:2]) == ["0", "1"]
    assert seen[2] == ""  # set, and empty: a CPU job never sees a GPU
    gate.touch()
    done = wait_for(plugin, ids, ENDED)
    assert {s.state for s in done.values()} == {BatchState.COMPLETED}
    assert (requests[3].workdir / "cuda.txt").read_text() in {"0", "1"}
    with pytest.raises(BatchError, match="never run here"):
        plugin.submit([request_for("greedy", "true", gpu=3)])


def test_environment_carries_threads_request_env_and_id(
    local_plugin: Plugin, request_for: Request
) -> None:
    plugin = local_plugin()
    script = 'echo "$OMP_NUM_THREADS $SITE_VAR $FRAZIL_BATCH_ID"'
    request = request_for("env", script, cpu=2, env={"SITE_VAR": "x y"})
    (job,) = plugin.submit([request])
    wait_for(plugin, [job], {BatchState.COMPLETED})
    assert request.stdout.read_text() == f"2 x y {job}\n"


def test_jobs_wait_for_free_cpus(
    local_plugin: Plugin, request_for: Request, tmp_path: Path
) -> None:
    plugin = local_plugin(cpus=1)
    log, gate = tmp_path / "log", tmp_path / "gate"
    first = request_for("first", gated(gate, f"echo start-1 >> {log}", f"echo end-1 >> {log}"))
    second = request_for("second", f"echo start-2 >> {log}; echo end-2 >> {log}")
    ids = plugin.submit([first, second])
    for _ in range(3):  # status schedules, but there is no room yet
        found = plugin.status(ids)
        assert [found[i].state for i in ids] == [BatchState.RUNNING, BatchState.PENDING]
        time.sleep(0.1)
    gate.touch()
    wait_for(plugin, ids, {BatchState.COMPLETED})
    assert log.read_text().split() == ["start-1", "end-1", "start-2", "end-2"]


def test_a_request_that_can_never_fit_is_refused_whole(
    local_plugin: Plugin, request_for: Request, tmp_path: Path
) -> None:
    plugin = local_plugin(cpus=2, memory=2.0)
    for fields in ({"cpu": 3}, {"memory": 2.5}, {"gpu": 1}):
        with pytest.raises(BatchError, match="never run here"):
            plugin.submit([request_for("fine", "true"), request_for("big", "true", **fields)])
    assert (
        not list((tmp_path / "state").glob("*.job.json")) if (tmp_path / "state").exists() else True
    )
    assert not (tmp_path / "fine" / "fine.sh").exists()


def test_a_new_plugin_takes_over_the_jobs_of_the_old_one(
    local_plugin: Plugin, request_for: Request, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    old = local_plugin(cpus=1)
    ids = old.submit([request_for("one", gated(gate)), request_for("two", "echo ran; exit 5")])
    assert [old.status(ids)[i].state for i in ids] == [BatchState.RUNNING, BatchState.PENDING]
    del old  # the daemon restarts
    new = local_plugin(cpus=1)
    assert [new.status(ids)[i].state for i in ids] == [BatchState.RUNNING, BatchState.PENDING]
    gate.touch()
    done = wait_for(new, ids, ENDED)
    assert (done[ids[0]].state, done[ids[0]].exit_code) == (BatchState.COMPLETED, 0)
    assert (done[ids[1]].state, done[ids[1]].exit_code) == (BatchState.FAILED, 5)
    assert (tmp_path / "two" / "out.txt").read_text() == "ran\n"


def test_clean_queue_also_cancels_queued_jobs(
    local_plugin: Plugin, request_for: Request, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    plugin = local_plugin(cpus=2)
    ids = plugin.submit([request_for(n, gated(gate)) for n in ("kept", "orphan", "queued")])
    assert plugin.status(ids)[ids[2]].state is BatchState.PENDING
    assert sorted(plugin.clean_queue([ids[0]])) == sorted(ids[1:])
    found = plugin.status(ids)
    assert found[ids[0]].state is BatchState.RUNNING
    assert found[ids[1]].state is BatchState.CANCELLED
    assert found[ids[2]].state is BatchState.CANCELLED
    assert not (tmp_path / "queued" / "out.txt").exists()  # it never started
    assert plugin.clean_queue(ids) == []


def test_memory_limit_stops_a_job_that_allocates_too_much(
    local_plugin: Plugin, request_for: Request
) -> None:
    plugin = local_plugin()
    # Limit: 0.2 GB * 1.5 + 1 GB = 1.3 GB of address space.
    small = request_for("small", f"{PY} -c 'bytearray(50 * 2**20)'", memory=0.2)
    huge = request_for("huge", f"{PY} -c 'bytearray(4 * 2**30)'", memory=0.2)
    ids = plugin.submit([small, huge])
    done = wait_for(plugin, ids, ENDED)
    assert done[ids[0]].state is BatchState.COMPLETED
    assert done[ids[1]].state is BatchState.FAILED
    assert "MemoryError" in huge.stderr.read_text()


def test_finished_jobs_are_forgotten_after_keep_finished(
    local_plugin: Plugin, request_for: Request, tmp_path: Path
) -> None:
    plugin = local_plugin(keep_finished=0.5)
    (job,) = plugin.submit([request_for("brief", "true")])
    wait_for(plugin, [job], {BatchState.COMPLETED})
    wait_for(plugin, [job], {BatchState.VANISHED})
    assert list((tmp_path / "state").glob(f"{job}.*")) == []


def test_constructor_checks_settings_without_touching_disk(tmp_path: Path) -> None:
    LocalPlugin(state_dir=tmp_path / "state")
    assert not (tmp_path / "state").exists()
    with pytest.raises(BatchError):
        LocalPlugin(state_dir=tmp_path, cpus=0)
    with pytest.raises(BatchError, match="no variants"):
        LocalPlugin(state_dir=tmp_path, variant="dag")


def test_jobs_outlive_the_daemon_process_that_started_them(
    local_plugin: Plugin, request_for: Request, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    request = request_for("survivor", gated(gate, after="echo done"))
    daemon = (
        "import pickle, sys\n"
        "from frazil.batch.local import LocalPlugin\n"
        "plugin = LocalPlugin(state_dir=sys.argv[1], cpus=1, memory=8.0)\n"
        "print(plugin.submit([pickle.loads(bytes.fromhex(sys.argv[2]))])[0])\n"
    )
    argv = [sys.executable, "-c", daemon, str(tmp_path / "state"), pickle.dumps(request).hex()]
    # The daemon exits here; run_command would hang if the job still held its pipes.
    (job,) = run_command(argv, timeout=30, cwd=ROOT).stdout.split()
    plugin = local_plugin(cpus=1)
    assert plugin.status([job])[job].state is BatchState.RUNNING
    gate.touch()
    assert wait_for(plugin, [job], ENDED)[job].state is BatchState.COMPLETED
    assert request.stdout.read_text() == "done\n"


TREE = ROOT / "tests" / "data" / "process_tree.py"


@pytest.fixture
def tree_pids() -> Iterator[Callable[[Path, int], list[int]]]:
    """The pids a process tree wrote, once all its levels run; what is left is killed after
    the test, whatever happened."""
    seen: list[int] = []

    def read(pidfile: Path, count: int) -> list[int]:
        wait_until(lambda: pidfile.exists() and len(pidfile.read_text().split()) == count)
        seen.extend(int(p) for p in pidfile.read_text().split())
        return seen[-count:]

    yield read
    for pid in seen:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


Trees = Callable[[Path, int], list[int]]


def gone(pids: list[int], within: float) -> bool:
    """Whether every one of ``pids`` is dead (or a zombie) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while any(pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_cancel_kills_the_whole_tree_in_every_session(
    local_plugin: Plugin, request_for: Request, tree_pids: Trees
) -> None:
    """Levels that ignore SIGTERM and leave for sessions of their own still die."""
    plugin = local_plugin(kill_grace=0.5)
    request = request_for("tree", f"exec {PY} {shlex.quote(str(TREE))} pids 3")
    (job,) = plugin.submit([request])
    pids = tree_pids(request.workdir / "pids", 3)
    assert len({os.getsid(p) for p in pids}) == 3  # three sessions: no group kill reaches all
    plugin.cancel([job])
    assert plugin.status([job])[job].state is BatchState.CANCELLED
    assert gone(pids, 3.0), [p for p in pids if pid_alive(p)]


def test_what_a_job_leaves_behind_dies_when_it_ends(
    local_plugin: Plugin, request_for: Request, tree_pids: Trees
) -> None:
    plugin = local_plugin()
    tree = f"{PY} {shlex.quote(str(TREE))} pids 2"
    both = '[ -s pids ] && [ "$(wc -l < pids)" -ge 2 ]'
    request = request_for("leaves", f"{tree} & until {both}; do sleep 0.05; done; exit 0")
    (job,) = plugin.submit([request])
    pids = tree_pids(request.workdir / "pids", 2)
    assert wait_for(plugin, [job], ENDED)[job].state is BatchState.COMPLETED
    assert gone(pids, 3.0), [p for p in pids if pid_alive(p)]


def test_a_killed_command_does_not_leave_its_children_running(
    local_plugin: Plugin, request_for: Request, tree_pids: Trees
) -> None:
    """The pilot's case: the job's main process is SIGKILLed, its tree lives elsewhere."""
    plugin = local_plugin()
    tree = f"{PY} {shlex.quote(str(TREE))} pids 3"
    request = request_for("killed", f"echo $$ > main; {tree} & wait")
    (job,) = plugin.submit([request])
    pids = tree_pids(request.workdir / "pids", 3)
    os.kill(int((request.workdir / "main").read_text()), signal.SIGKILL)
    status = wait_for(plugin, [job], ENDED)[job]
    assert (status.state, status.exit_code) == (BatchState.FAILED, 128 + 9)
    assert gone(pids, 3.0), [p for p in pids if pid_alive(p)]


def test_a_dead_runners_whole_job_is_killed(
    local_plugin: Plugin, request_for: Request, tmp_path: Path, tree_pids: Trees
) -> None:
    """Without its runner, the job's processes are found by their FRAZIL_BATCH_ID."""
    plugin = local_plugin()
    request = request_for("orphans", f"exec {PY} {shlex.quote(str(TREE))} pids 3")
    (job,) = plugin.submit([request])
    pids = tree_pids(request.workdir / "pids", 3)
    runner = json.loads((tmp_path / "state" / f"{job}.job.json").read_text())["pid"]
    os.kill(runner, signal.SIGKILL)
    assert wait_for(plugin, [job], ENDED)[job].state is BatchState.VANISHED
    assert gone(pids, 3.0), [p for p in pids if pid_alive(p)]
