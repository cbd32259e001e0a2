"""Running a Python ``Module`` class outside the pilot: the pilot's side.

The runs go to the module host (``modulehost``, ``python -m frazil.pilot.modulehost``), a
small process the pilot starts on first use: single-threaded, with the pilot's own modules
imported but never a task's code. Its workers (``worker``) are forks of it that run class
runs one at a time, each as from a fresh fork of the host:

- a task's module code is imported afresh by every run: a long-lived multi-task pilot never
  runs the code it imported for an earlier task after the module was edited;
- what the class prints, logs or leaves to its subprocesses goes to the task's stdout and
  stderr files (its descriptors 1 and 2), hence to the task's logs;
- a run can be stopped like a script (its worker is its own process group), dies with the
  host (``PR_SET_PDEATHSIG``), which ends when the pilot does (its request pipe closes), and
  its CPU time and peak memory are its own, not the whole pilot's;
- the class's code cannot change the pilot's ``sys.path``, environment or working directory.

Forking the single-threaded host costs milliseconds (page faults, mostly), against ~100 ms
for a new interpreter; forking the multi-threaded pilot itself would not be safe.
(multiprocessing's ``forkserver`` would re-run the pilot's main module in every child.) A
worker that ran a run cleanly takes the next one, so most runs pay for no fork at all; one
that cannot be put back as the host left it retires (``worker`` says when).

The protocol is JSON lines: the pilot writes a request ``{"id", ...ClassRun}``, the host
answers ``{"id", "pid"}`` once a worker runs it and ``{"id", "status", "cpu_time",
"max_memory", "retired"}`` once it ended, with the class's ``"stats"`` and ``"error"`` when it
returned or raised (``"finished"``), or ``{"id", "error"}`` when no worker could take it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from frazil.errors import FrazilError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassRun:
    """One run of a module class: what to run, where, and where its output and result go."""

    name: str
    class_name: str
    params: dict[str, Any]
    workdir: str
    stdout: str
    stderr: str
    sys_path: tuple[str, ...] = ()  # the child's import path (the task's code first)
    env: dict[str, str] = field(default_factory=dict)  # added to the environment


@dataclass(frozen=True)
class Ended:
    """How a run ended: what the class answered, or how its worker died in it."""

    status: int  # a wait status (os.waitstatus_to_exitcode): 0 when the class answered
    cpu_time: float  # seconds, its own and its waited-for children's
    max_memory: float  # GB
    retired: str = ""  # why its worker ended after it, if it did
    finished: bool = False  # the class returned or raised (else its worker died in the run)
    stats: Any = None  # what the class put in its statistics (checked by the caller)
    error: str | None = None  # why the class failed, if it did


class HostGone(FrazilError):
    """The host process ended (or could not start) while a run was in it."""


class _Pending:
    def __init__(self, number: int, stops: int) -> None:
        self.number = number
        self.stops = stops  # the host's pipe for stop requests
        self.pid: int | None = None
        self.ended: Ended | None = None
        self.error = ""
        self.started = threading.Event()
        self.done = threading.Event()

    def fail(self, error: str) -> None:
        self.error = error
        self.started.set()
        self.done.set()


class Handle:
    """A run in progress: a way to stop it and to wait for its end (and its process id)."""

    def __init__(self, pending: _Pending) -> None:
        self._pending = pending

    @property
    def pid(self) -> int:
        """The process of the worker that runs it (waits until one does)."""
        self._pending.started.wait()
        if self._pending.pid is None:
            raise HostGone(self._pending.error)
        return self._pending.pid

    def stop(self) -> None:
        """Ask the host to terminate the run's process group if the run is still in it
        (one short write, safe in a signal handler; never a later run of the same worker)."""
        with contextlib.suppress(OSError):
            os.write(self._pending.stops, f'{{"stop": {self._pending.number}}}\n'.encode())

    def wait(self) -> Ended:
        """Block until the run's process has ended."""
        self._pending.done.wait()
        if self._pending.ended is None:
            raise HostGone(self._pending.error)
        return self._pending.ended


class Host:
    """The pilot's side of the host process; thread-safe, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the state below
        self._writing = threading.Lock()  # the request pipe (never held with the other)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stops = -1  # the writing end of its pipe for stop requests
        self._pending: dict[int, _Pending] = {}
        self._next = 0

    def start(self, run: ClassRun) -> Handle:
        """Start ``run`` in one of the host's workers."""
        with self._lock:
            proc = self._running()
            self._next += 1
            number = self._next
            pending = self._pending[number] = _Pending(number, self._stops)
        line = json.dumps({"id": number, **asdict(run)}, default=str) + "\n"
        try:
            with self._writing:
                assert proc.stdin is not None
                proc.stdin.write(line.encode())
                proc.stdin.flush()
        except OSError as exc:
            pending.fail(f"the module host is gone: {exc}")
        return Handle(pending)

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        if self._stops >= 0:
            os.close(self._stops)  # the last host's
            self._stops = -1
        stops, self._stops = os.pipe()
        os.set_blocking(self._stops, False)
        try:
            proc = subprocess.Popen(  # noqa: S603 - this Python, our module host
                [sys.executable, "-m", "frazil.pilot.modulehost", "--stops", str(stops)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0,
                pass_fds=(stops,),
            )  # fmt: skip
        except OSError as exc:
            raise HostGone(f"cannot start the module host: {exc}") from exc
        finally:
            os.close(stops)
        self._proc = proc
        assert proc.stdout is not None
        reader = threading.Thread(
            target=self._read, args=(proc, proc.stdout), name="module-host", daemon=True
        )
        reader.start()
        return proc

    def _read(self, proc: subprocess.Popen[bytes], answers: IO[bytes]) -> None:
        for line in answers:
            try:
                answer = json.loads(line)
            except ValueError:
                log.error("module host: unreadable answer %r", line[:200])
                continue
            with self._lock:
                pending = self._pending.get(answer["id"])
                if pending is not None and "pid" not in answer:
                    del self._pending[answer["id"]]
            if pending is None:
                continue
            if "pid" in answer:
                pending.pid = answer["pid"]
                pending.started.set()
            elif "error" in answer:
                pending.fail(str(answer["error"]))
            else:
                pending.ended = Ended(
                    answer["status"], answer["cpu_time"], answer["max_memory"],
                    answer.get("retired", ""), bool(answer.get("finished")),
                    answer.get("stats"), answer.get("run_error"),
                )  # fmt: skip
                pending.started.set()
                pending.done.set()
        proc.wait()
        with self._lock:
            lost, self._pending = self._pending, {}
        for pending in lost.values():
            pending.fail(f"the module host ended ({proc.returncode})")


_host = Host()


def start(run: ClassRun) -> Handle:
    """Start ``run`` in this pilot's host process (started on first use)."""
    return _host.start(run)
