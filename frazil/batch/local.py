"""The ``local`` batch plugin: every job is a real process on this machine.

The embedded default, for a laptop or a single worker box. Each job runs under a small
supervisor (``local_runner``) in its own session, which enforces the walltime and the memory
limit and records how the job ended. The plugin keeps one state directory (``state_dir``)
that holds, per job id:

* ``<id>.job.json`` — written by the plugin: the request, when it was submitted and launched,
  the GPUs assigned, the runner's pid and its start time (to detect pid reuse);
* ``<id>.run.json`` — written by the runner: its pid and the pid of the command;
* ``<id>.end.json`` — written once, by whoever sees the end first: state, exit code, reason.

Since all of that is on disk, a new ``LocalPlugin`` over the same ``state_dir`` (after a daemon
restart) sees every job the previous one started, and starts the ones still pending.

Scheduling happens in ``submit`` and ``status``: the plugin holds ``cpus``, ``memory`` (GB) and
``gpus`` of the machine; a job that does not fit right now stays ``PENDING`` until a later
``status`` call finds room. Pending jobs start oldest first, and one that does not fit does
not block smaller ones behind it. Disk is not enforced. Finished jobs are forgotten after
``keep_finished`` seconds and then report ``VANISHED``, like Slurm after ``MinJobAge``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from frazil.batch import local_runner
from frazil.batch.base import BatchPlugin, BatchState, BatchStatus, JobRequest, native_state
from frazil.batch.local_runner import pid_alive, proc_start_ticks, read_json, write_json
from frazil.batch.run import start_detached
from frazil.errors import BatchCommandError, BatchError

log = logging.getLogger(__name__)

GIB = 2**30
#: Thread pools that size themselves to the whole machine unless told the job's share.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: The local plugin's own state codes (the ``state`` of an end record, or derived).
NATIVE_STATES = {
    "pending": BatchState.PENDING,
    "running": BatchState.RUNNING,
    "completed": BatchState.COMPLETED,
    "failed": BatchState.FAILED,
    "timeout": BatchState.TIMEOUT,
    "cancelled": BatchState.CANCELLED,
    "vanished": BatchState.VANISHED,
}
_ID_PREFIX = "local-"
_LAUNCH_TIMEOUT = 30.0  # a launched runner that has left no pid anywhere by then is lost
_RUNNER = Path(local_runner.__file__)


@dataclass(frozen=True)
class _Job:
    """One job as recorded in ``<id>.job.json``."""

    id: str
    name: str
    script: str
    workdir: str
    stdout: str
    stderr: str
    env: dict[str, str]
    cpu: int
    gpu: int
    memory: float
    walltime: float
    submitted_ns: int  # strictly increasing per plugin: the queue order
    launched: float | None = None
    gpus: list[int] = field(default_factory=list)
    pid: int | None = None
    pid_start: int | None = None


class LocalPlugin(BatchPlugin):
    """Run jobs as processes on this machine, surviving restarts through ``state_dir``.

    ``cpus``/``memory`` default to this machine's, ``gpus`` to none. The command's address space
    is limited to ``memory * memory_factor + 1`` GB (Python and CUDA reserve far more than they
    touch); ``memory_limit=False`` turns that off. ``kill_grace`` is the time between SIGTERM
    and SIGKILL on walltime expiry and cancel; ``cancel`` may block that long plus 2 s.
    Jobs inherit the daemon's environment, then ``OMP_NUM_THREADS`` and friends set to ``cpu``,
    then ``request.env``; ``CUDA_VISIBLE_DEVICES`` and ``FRAZIL_BATCH_ID`` always come from the
    plugin. One thread drives an instance; instances sharing ``state_dir`` lock each other out.
    """

    name = "local"

    def __init__(
        self,
        *,
        state_dir: Path | str,
        cpus: int | None = None,
        memory: float | None = None,
        gpus: int = 0,
        memory_limit: bool = True,
        memory_factor: float = 1.5,
        kill_grace: float = 10.0,
        keep_finished: float = 7 * 86400.0,
        python: str = sys.executable,
        variant: str | None = None,
    ) -> None:
        if variant is not None:
            raise BatchError(f"the local batch plugin has no variants (got {variant!r})")
        self.state_dir = Path(state_dir)
        self.cpus = cpus if cpus is not None else len(os.sched_getaffinity(0))
        self.memory = memory if memory is not None else _physical_memory_gib()
        self.gpus = gpus
        self.memory_limit = memory_limit
        self.memory_factor = memory_factor
        self.kill_grace = kill_grace
        self.keep_finished = keep_finished
        self.python = python
        if self.cpus < 1 or self.memory <= 0 or gpus < 0 or memory_factor <= 0 or kill_grace < 0:
            raise BatchError(
                f"local plugin: need cpus >= 1, memory > 0, gpus >= 0, memory_factor > 0 and "
                f"kill_grace >= 0 (got {self.cpus}, {self.memory}, {gpus}, {memory_factor}, "
                f"{kill_grace})"
            )
        self._procs: dict[str, subprocess.Popen[bytes]] = {}  # runners we started: to reap
        self._last_ns = 0

    # -- the interface --------------------------------------------------------------------

    def write_script(self, request: JobRequest) -> Path:
        """Write ``<workdir>/<name>.sh``: cd, the ``extra`` lines, then exec the argv."""
        request.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            "#!/bin/sh",
            f"# frazil local job {request.name}: cpu={request.cpu} gpu={request.gpu} "
            f"memory={request.memory:g}GB disk={request.disk:g}GB walltime={request.walltime:g}h",
            f"cd {shlex.quote(str(request.workdir))} || exit 1",
            *request.extra,
            "exec " + shlex.join(request.argv),
        ]
        path = request.workdir / f"{request.name}.sh"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o755)
        return path

    def submit(self, requests: Sequence[JobRequest]) -> list[str]:
        """Record the requests, then start those that fit now; the rest stay PENDING."""
        requests = list(requests)
        for request in requests:
            if request.after:
                raise BatchError("the local plugin cannot hold a job until others end (after=)")
            self._check_fits(request)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ids = []
        for request in requests:
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            job = _Job(
                id=f"{_ID_PREFIX}{uuid.uuid4().hex}",
                name=request.name,
                script=str(self.write_script(request)),
                workdir=str(request.workdir),
                stdout=str(request.stdout),
                stderr=str(request.stderr),
                env=dict(request.env),
                cpu=request.cpu,
                gpu=request.gpu,
                memory=request.memory,
                walltime=request.walltime,
                submitted_ns=self._last_ns,
            )
            write_json(self._file(job.id, "job"), asdict(job))
            ids.append(job.id)
        self._schedule()
        return ids

    def status(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """Start what fits (see the module docstring), then report every id."""
        known = self._schedule()
        return {i: known.get(i) or _vanished(i, f"no job {i} in {self.state_dir}") for i in ids}

    def cancel(self, ids: Sequence[str]) -> None:
        """SIGTERM the runners (they stop their jobs) and wait for their end records."""
        asked = []
        with self._lock():
            now = time.time()
            for job in filter(None, map(self._load, ids)):
                if self._settle(job, now) is not None:
                    continue
                if job.launched is None:  # still queued here: it just never starts
                    self._record_end(job, "cancelled", "cancelled before it started")
                    continue
                runner = self._runner(job)
                if runner is not None and pid_alive(*runner):  # not a reused pid
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(runner[0], signal.SIGTERM)
                asked.append(job)
        deadline = time.monotonic() + self.kill_grace + 2.0
        while asked:
            self._reap()
            asked = [job for job in asked if not self._file(job.id, "end").exists()]
            # A runner that is gone (killed before it set up its handler) or that outlived
            # the grace will never record the end: stop its command and record it ourselves.
            late = time.monotonic() >= deadline
            for job in [job for job in asked if late or not self._runner_alive(job)]:
                self._force_cancel(job)
                asked.remove(job)
            if asked:
                time.sleep(0.05)
        self._reap()

    def clean_queue(self, known_ids: Collection[str]) -> list[str]:
        """Cancel the pending and running jobs in ``state_dir`` that are not in ``known_ids``."""
        known = set(known_ids)
        now = time.time()
        orphans = [
            job.id
            for job in self._load_all()
            if job.id not in known and self._settle(job, now) is None
        ]
        if orphans:
            log.warning("local: cancelling %d orphaned job(s): %s", len(orphans), orphans)
            self.cancel(orphans)
        return orphans

    # -- scheduling -----------------------------------------------------------------------

    def _check_fits(self, request: JobRequest) -> None:
        if request.cpu > self.cpus or request.gpu > self.gpus or request.memory > self.memory:
            raise BatchError(
                f"job {request.name!r} can never run here: it needs cpu={request.cpu} "
                f"gpu={request.gpu} memory={request.memory:g}GB, this machine has "
                f"cpu={self.cpus} gpu={self.gpus} memory={self.memory:g}GB"
            )

    def _schedule(self) -> dict[str, BatchStatus]:
        """Start the pending jobs that fit now, oldest first; return every job's status."""
        self._reap()
        with self._lock():
            now = time.time()
            statuses: dict[str, BatchStatus] = {}
            pending: list[_Job] = []
            cpu, memory, busy_gpus = self.cpus, self.memory, set[int]()
            for job in self._load_all():
                end = self._settle(job, now)
                ended = end.get("ended") if end is not None else None
                if isinstance(ended, float | int) and now - ended > self.keep_finished:
                    self._forget(job.id)
                    continue
                statuses[job.id] = _status(job, end)
                if statuses[job.id].state is BatchState.PENDING:
                    pending.append(job)
                elif end is None:  # launched and not ended: it holds its resources
                    cpu, memory = cpu - job.cpu, memory - job.memory
                    busy_gpus.update(job.gpus)
            for job in pending:
                free_gpus = [i for i in range(self.gpus) if i not in busy_gpus]
                if job.cpu <= cpu and job.memory <= memory + 1e-9 and job.gpu <= len(free_gpus):
                    statuses[job.id] = self._launch(job, free_gpus[: job.gpu])
                    cpu, memory = cpu - job.cpu, memory - job.memory
                    busy_gpus.update(free_gpus[: job.gpu])
            return statuses

    def _launch(self, job: _Job, gpus: list[int]) -> BatchStatus:
        job = replace(job, launched=time.time(), gpus=gpus)
        write_json(self._file(job.id, "job"), asdict(job))
        argv = [self.python, "-I", str(_RUNNER), "--end", str(self._file(job.id, "end"))]
        argv += ["--run", str(self._file(job.id, "run")), "--walltime", repr(job.walltime * 3600)]
        argv += ["--grace", repr(self.kill_grace)]
        if self.memory_limit:
            limit = int((job.memory * self.memory_factor + 1.0) * GIB)
            argv += ["--rlimit-as", str(limit)]
        argv += ["--", "/bin/sh", job.script]
        env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, str(job.cpu)), **job.env}
        # The plugin's GPU assignment is not negotiable: "" hides every GPU from CPU-only jobs.
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
        env["FRAZIL_BATCH_ID"] = job.id
        try:
            proc = start_detached(
                argv, stdout=Path(job.stdout), stderr=Path(job.stderr), env=env, cwd=job.workdir
            )
        except BatchCommandError as exc:
            log.error("local: cannot launch %s: %s", job.id, exc)
            self._record_end(job, "failed", f"cannot launch: {exc}")
            return _status(job, read_json(self._file(job.id, "end")))
        self._procs[job.id] = proc
        job = replace(job, pid=proc.pid, pid_start=proc_start_ticks(proc.pid))
        write_json(self._file(job.id, "job"), asdict(job))
        log.debug("local: started %s (%s) as pid %d, gpus %s", job.id, job.name, proc.pid, gpus)
        return _status(job, None)

    # -- the state directory ----------------------------------------------------------------

    def _settle(self, job: _Job, now: float) -> dict[str, Any] | None:
        """The job's end record, or None while it is pending or running.

        A runner that died without recording an end (killed, or the machine rebooted) leaves
        its command unsupervised: the command is killed and the job recorded as vanished.
        """
        end = read_json(self._file(job.id, "end"))
        if end is not None or job.launched is None:
            return end
        runner = self._runner(job)
        if runner is None and now - job.launched < _LAUNCH_TIMEOUT:
            return None  # launched a moment ago by a plugin that has not saved the pid yet
        if runner is not None and pid_alive(*runner):
            return None
        end = read_json(self._file(job.id, "end"))  # it may have recorded one, then exited
        if end is not None:
            return end
        self._kill_command(job)
        what = f"pid {runner[0]}" if runner else "never started"
        self._record_end(job, "vanished", f"the job's runner ({what}) ended without a record")
        return read_json(self._file(job.id, "end"))

    def _runner(self, job: _Job) -> tuple[int, int | None] | None:
        """The runner's pid and start ticks, from our record or else from the runner's."""
        if job.pid is not None:
            return job.pid, job.pid_start
        run = read_json(self._file(job.id, "run"))
        pid = run.get("pid") if run else None
        return (pid, None) if isinstance(pid, int) else None

    def _runner_alive(self, job: _Job) -> bool:
        runner = self._runner(job)
        return runner is not None and pid_alive(*runner)

    def _force_cancel(self, job: _Job) -> None:
        runner = self._runner(job)
        if runner is not None and pid_alive(*runner):
            with contextlib.suppress(ProcessLookupError):
                os.kill(runner[0], signal.SIGKILL)
        self._kill_command(job)
        self._record_end(job, "cancelled", "cancelled; the runner did not stop it in time")

    def _kill_command(self, job: _Job) -> None:
        """Kill what a runner that is gone left behind: its command's group, and every
        process of the job in another group or session, found by the ``FRAZIL_BATCH_ID`` its
        environment inherited (HTCondor finds a job's processes the same way)."""
        run = read_json(self._file(job.id, "run")) or {}
        child, start = run.get("child"), run.get("child_start")
        if isinstance(child, int) and pid_alive(child, start if isinstance(start, int) else None):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGKILL)
        for pid in _tagged(job.id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _record_end(self, job: _Job, state: str, reason: str) -> None:
        record = {"state": state, "exit_code": None, "ended": time.time(), "reason": reason}
        write_json(self._file(job.id, "end"), record, once=True)

    def _reap(self) -> None:
        """Collect our exited runners, so that they do not linger as zombies."""
        for job_id, proc in list(self._procs.items()):
            if proc.poll() is not None:
                del self._procs[job_id]

    def _file(self, job_id: str, kind: str) -> Path:
        return self.state_dir / f"{job_id}.{kind}.json"

    def _load(self, job_id: str) -> _Job | None:
        # Only well-formed ids touch the disk: an id is never a path.
        if not (job_id.startswith(_ID_PREFIX) and job_id[len(_ID_PREFIX) :].isalnum()):
            return None
        data = read_json(self._file(job_id, "job"))
        try:
            return _Job(**data) if data is not None else None
        except TypeError:
            log.warning("local: unreadable job record %s", self._file(job_id, "job"))
            return None

    def _load_all(self) -> list[_Job]:
        names = (p.name.removesuffix(".job.json") for p in self.state_dir.glob("*.job.json"))
        jobs = [job for job in map(self._load, names) if job is not None]
        return sorted(jobs, key=lambda job: job.submitted_ns)

    def _forget(self, job_id: str) -> None:
        for kind in ("job", "run", "end"):
            self._file(job_id, kind).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialize scheduling between plugins sharing ``state_dir`` (an old and a new daemon)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _status(job: _Job, end: dict[str, Any] | None) -> BatchStatus:
    if end is not None:
        code = str(end.get("state"))
        exit_code = end.get("exit_code")
        return BatchStatus(
            job.id,
            native_state("local", NATIVE_STATES, code),
            code,
            exit_code if isinstance(exit_code, int) else None,
            str(end.get("reason", "")),
        )
    if job.launched is None:
        wants = f"cpu={job.cpu} gpu={job.gpu} memory={job.memory:g}GB"
        return BatchStatus(job.id, BatchState.PENDING, "pending", None, f"waiting for {wants}")
    return BatchStatus(job.id, BatchState.RUNNING, "running", None, f"runner pid {job.pid}")


def _tagged(job_id: str) -> list[int]:
    """The processes of ours whose environment names ``job_id`` as their batch job."""
    tag = f"\0FRAZIL_BATCH_ID={job_id}\0".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if tag in b"\0" + environ:
            found.append(int(proc.name))
    return found


def _vanished(job_id: str, reason: str) -> BatchStatus:
    return BatchStatus(job_id, BatchState.VANISHED, "unknown", None, reason)


def _physical_memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
