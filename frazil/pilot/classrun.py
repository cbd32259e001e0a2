"""Running a Python ``Module`` class in a child process of its own, one per run.

The children are forked by a small host process (``python -m frazil.pilot.classrun``) that
the pilot starts on first use: single-threaded, with the pilot's own modules imported but
never a task's code. So

- a task's module code is imported afresh by every run: a long-lived multi-task pilot never
  runs the code it imported for an earlier task after the module was edited;
- what the class prints, logs or leaves to its subprocesses goes to the task's stdout and
  stderr files (its descriptors 1 and 2), hence to the task's logs;
- a run can be stopped like a script (its own process group), dies with the host
  (``PR_SET_PDEATHSIG``), which ends when the pilot does (its request pipe closes), and its
  CPU time and peak memory are its own (``wait4`` in the host), not the whole pilot's;
- the class's code cannot change the pilot's ``sys.path``, environment or working directory.

Forking the single-threaded host costs a millisecond or two, against ~100 ms for a new
interpreter; forking the multi-threaded pilot itself would not be safe. (multiprocessing's
``forkserver`` would re-run the pilot's main module in every child.) The host keeps one child
forked ahead (the spare), so a run starts without waiting for a fork; and the source a run
imports is compiled once per content for the host's life (``codecache``).

The protocol is JSON lines: the pilot writes a request ``{"id", ...ClassRun}``, the host
answers ``{"id", "pid"}`` once the child runs and ``{"id", "status", "cpu_time",
"max_memory"}`` once it is reaped (or ``{"id", "error"}``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from frazil.errors import FrazilError
from frazil.pilot import codecache
from frazil.pilot.modules import find_module_class

log = logging.getLogger(__name__)

#: prctl(2) option (linux/prctl.h).
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ClassRun:
    """One run of a module class: what to run, where, and where its output and result go."""

    name: str
    class_name: str
    params: dict[str, Any]
    workdir: str
    stdout: str
    stderr: str
    result: str  # a JSON file the child writes: {"stats": {...}, "error": str | None}
    sys_path: tuple[str, ...] = ()  # the child's import path (the task's code first)
    env: dict[str, str] = field(default_factory=dict)  # added to the environment


@dataclass(frozen=True)
class Ended:
    """How a run's process ended, as the host reaped it."""

    status: int  # a wait status (os.waitstatus_to_exitcode)
    cpu_time: float  # seconds, its own and its waited-for children's
    max_memory: float  # GB


class HostGone(FrazilError):
    """The host process ended (or could not start) while a run was in it."""


class _Pending:
    def __init__(self) -> None:
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
    """A run in progress: its process id, and a way to wait for its end."""

    def __init__(self, pending: _Pending) -> None:
        self._pending = pending
        pending.started.wait()
        if pending.pid is None:
            raise HostGone(pending.error)
        self.pid = pending.pid

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
        self._pending: dict[int, _Pending] = {}
        self._next = 0

    def start(self, run: ClassRun) -> Handle:
        """Start ``run`` in a fresh child of the host."""
        pending = _Pending()
        with self._lock:
            proc = self._running()
            self._next += 1
            number = self._next
            self._pending[number] = pending
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
        try:
            proc = subprocess.Popen(  # noqa: S603 - this Python, this module
                [sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, process_group=0,
            )  # fmt: skip
        except OSError as exc:
            raise HostGone(f"cannot start the module host: {exc}") from exc
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
                pending.ended = Ended(answer["status"], answer["cpu_time"], answer["max_memory"])
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


# -- the host process ---------------------------------------------------------------------


def _libc_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_prctl = None


def serve() -> None:
    """The host: hand each request line on stdin to a child, answer on stdout, until EOF."""
    global _prctl  # noqa: PLW0603 - looked up once, before any fork
    _prctl = _libc_prctl()
    answers = os.dup(1)
    os.dup2(2, 1)  # stray prints of the host itself go to the pilot's stderr
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # it ends with the pilot: at EOF
    # what the host holds now is never collected: a child's collections would otherwise walk
    # (and so copy, page by page) the whole inherited heap, ~15 ms per run
    gc.collect()
    gc.freeze()
    _inherited_output()
    cache = tempfile.mkdtemp(prefix="frazil-code-")
    try:
        _Host(answers, (answers, wake_r, wake_w), cache).loop(wake_r)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


@dataclass
class _Spare:
    """A child forked ahead of its request, waiting for it on a pipe."""

    pid: int
    requests: int  # the pipe's writing end


class _Host:
    """The host's state: the spare child, and the runs' children by process id."""

    def __init__(self, answers: int, host_fds: tuple[int, ...], cache: str) -> None:
        self.answers = answers
        self.host_fds = host_fds
        self.cache = cache
        self.spare: _Spare | None = None
        self.children: dict[int, int] = {}  # pid -> request id

    def loop(self, wake_r: int) -> None:
        self.spare = self._fork()
        buffer = b""
        while True:
            ready, _, _ = select.select([0, wake_r], [], [])
            if wake_r in ready:
                os.read(wake_r, 4096)
            if 0 in ready:
                data = os.read(0, 1 << 16)
                if not data:  # the pilot ended; the children follow (PR_SET_PDEATHSIG)
                    if self.spare is not None:
                        os.close(self.spare.requests)  # it ends on the empty request
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._start(line)
            self._reap()

    def _start(self, line: bytes) -> None:
        """Start the request's run and answer with its process, then fork the next spare:
        the fork is paid for after the answer, not before the run."""
        number = json.loads(line)["id"]
        pid = self._hand(line)
        if pid is None:
            _answer(self.answers, {"id": number, "error": "fork failed"})
        else:
            self.children[pid] = number
            _answer(self.answers, {"id": number, "pid": pid})
        self.spare = self._fork()

    def _hand(self, line: bytes) -> int | None:
        """Hand the request to the spare, or to a fresh fork if the spare died waiting (it is
        reaped as such); the child's process id, or None if no fork could be made."""
        for _ in range(2):
            spare, self.spare = self.spare or self._fork(), None
            if spare is None:
                return None
            try:
                _write_all(spare.requests, line)
            except OSError:
                continue
            finally:
                os.close(spare.requests)
            return spare.pid
        return None

    def _reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            number = self.children.pop(pid, None)
            if number is None:
                if self.spare is not None and self.spare.pid == pid:
                    os.close(self.spare.requests)
                    self.spare = None
                continue
            _answer(self.answers, {
                "id": number, "status": status,
                "cpu_time": usage.ru_utime + usage.ru_stime,
                "max_memory": usage.ru_maxrss / 1024 / 1024,  # KB -> GB
            })  # fmt: skip

    def _fork(self) -> _Spare | None:
        host = os.getpid()
        requests, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(requests)
            os.close(write)
            return None
        if pid:
            os.close(requests)
            with contextlib.suppress(OSError):  # the child does it too; whoever is first
                os.setpgid(pid, pid)
            return _Spare(pid, write)
        code = 70
        try:
            os.close(write)
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            for fd in self.host_fds:
                os.close(fd)
            code = _spare(requests, host, self.cache)
        except BaseException:  # whatever it is, the child must end here
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(code)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data + b"\n")
    while view:
        view = view[os.write(fd, view) :]


def _spare(requests: int, host: int, cache: str) -> int:
    """In a spare child: become a process group that dies with the host, wait for the
    request, run it."""
    os.setpgid(0, 0)
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != host:
        return 70  # the host died in between
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    chunks = []
    while chunk := os.read(requests, 1 << 16):
        chunks.append(chunk)
    os.close(requests)
    if not chunks:
        return 0  # not needed: the host ended
    request = json.loads(b"".join(chunks))
    del request["id"]
    return _child(ClassRun(**{**request, "sys_path": tuple(request["sys_path"])}), cache)


def _inherited_output() -> None:
    """What every child inherits: line-buffered sys.stdout and sys.stderr on descriptors 1
    and 2 (the task's files once the child took them) and a root logger writing to stderr
    (set up once here: ``logging.basicConfig`` in every child cost milliseconds)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip


def _answer(fd: int, answer: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(answer) + "\n").encode())


def _child(run: ClassRun, cache: str) -> int:
    """In the child: take the task's descriptors, run the class."""
    for fd, path in ((1, run.stdout), (2, run.stderr)):
        target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(target, fd)
        os.close(target)
    # sys.stdout, sys.stderr and the root logger's handler were set up line-buffered by the
    # host (``_inherited_output``): they write to descriptors 1 and 2, the task's files now
    os.chdir(run.workdir)
    os.environ.update(run.env)
    sys.path[:] = run.sys_path
    sys.dont_write_bytecode = True  # a bytecode cache must not outlive an edit of the code
    codecache.install(cache)  # but one keyed by the source's content can
    stats: dict[str, float] = {}
    error = None
    try:
        cls = find_module_class(run.class_name)
        cls(run.params, workdir=run.workdir, name=run.name).run(stats)
    except FrazilError as exc:
        error = f"module {run.name}: {exc}"
    except SystemExit as exc:
        if exc.code not in (0, None):
            error = f"module {run.name} exited with {exc.code!r}"
    except BaseException as exc:  # the module's own bug, whatever it is: report it
        traceback.print_exc()
        error = f"module {run.name} raised {type(exc).__name__}: {exc}"
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    partial = f"{run.result}.part"
    with open(partial, "w") as f:
        json.dump({"stats": stats, "error": error}, f, default=repr)
    os.replace(partial, run.result)
    return 0


if __name__ == "__main__":
    serve()
