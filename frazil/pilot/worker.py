"""A worker of the module host: a forked process that runs class runs, one at a time.

Each run starts as from a fresh fork of the host: the task's code is imported afresh (the
modules a run imported from the task's directories are forgotten after it, and their source
is compiled once per content by ``codecache``), the run's output goes to the task's stdout
and stderr files (descriptors 1 and 2), its working directory, environment and import path
are its own, and its CPU time and peak memory are measured for it alone (``getrusage``
deltas, and the peak reset through ``/proc/self/clear_refs``).

After a run the worker puts back what a run may change in the process (environment, working
directory, import path, standard streams, root logger, warning filters, signal handlers,
umask, recursion limit) and goes on only if nothing else is left of the run: it retires (ends
after answering) when the run failed, imported anything but the task's own Python source,
the standard library or Frazil's own modules (an installed package, an extension module),
left a thread, a child process or an open descriptor behind, grew the worker's memory by
more than ``MAX_GROWTH``, or after ``MAX_RUNS`` runs. The next run then starts in a new
worker, as from a fresh fork.

A worker is its own process group (stopping a run kills the worker and what it started) and
dies with the host (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import json
import linecache
import logging
import os
import resource
import signal
import sys
import sysconfig
import threading
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from frazil.errors import FrazilError
from frazil.pilot import codecache
from frazil.pilot.classrun import ClassRun
from frazil.pilot.modules import find_module_class

#: prctl(2) options (linux/prctl.h).
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
#: Runs after which a worker retires, whatever they left.
MAX_RUNS = 200
#: Growth of a worker's resident memory (bytes) after which it retires.
MAX_GROWTH = 256 * 1024 * 1024


def _libc_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_prctl = _libc_prctl()


def inherited_output() -> None:
    """Set up in the host, for every worker: line-buffered sys.stdout and sys.stderr on
    descriptors 1 and 2 (the task's files during a run) and a root logger writing to stderr
    (``logging.basicConfig`` in every run would cost milliseconds)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What a worker answers the host after a run."""

    cpu_time: float  # seconds, the run's own and its waited-for children's
    max_memory: float  # GB
    retire: str  # why the worker ends after this run ("": it goes on)
    stats: dict[str, Any]  # what the class put in its statistics
    error: str | None  # why the class failed, if it did

    def line(self) -> bytes:
        """The answer as a line of JSON (statistics JSON cannot hold: the run's error)."""
        try:
            text = json.dumps(self.__dict__, default=repr)
        except (TypeError, ValueError) as exc:  # keys JSON cannot hold, nesting too deep
            error = self.error or f"its statistics cannot be sent: {exc}"
            text = json.dumps({**self.__dict__, "stats": {}, "error": error})
        return (text + "\n").encode()


def main(requests: int, answers: int, host: int, cache: str) -> int:
    """In a newly forked worker: run the requests read from ``requests`` until it closes
    or the worker retires; answer each on ``answers``."""
    os.setpgid(0, 0)
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _prctl(PR_SET_NAME, ctypes.c_char_p(b"frazil-worker"), 0, 0, 0)
    if os.getppid() != host:
        return 70  # the host died in between
    signal.set_wakeup_fd(-1)
    for number in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
    _only_fds(requests, answers)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    state = _State(cache)
    lines = _lines(requests)
    for runs in range(1, MAX_RUNS + 1):
        line = next(lines, None)
        if line is None:
            return 0  # not needed any more
        outcome = state.run(_parse(line), last=runs == MAX_RUNS)
        _write_all(answers, outcome.line())
        if outcome.retire:
            break
    return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _only_fds(*keep: int) -> None:
    """Close every descriptor of the host's but the standard ones and ``keep``."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _lines(fd: int) -> Any:
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line


def _parse(line: bytes) -> ClassRun:
    request = json.loads(line)
    request.pop("id", None)
    return ClassRun(**{**request, "sys_path": tuple(request["sys_path"])})


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _memory() -> tuple[int, int]:
    """The resident memory and its peak (VmRSS, VmHWM of /proc/self/status), in bytes."""
    found = {"VmRSS": 0, "VmHWM": 0}
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            key = line.partition(":")[0]
            if key in found:
                found[key] = int(line.split()[1]) * 1024
    return found["VmRSS"], found["VmHWM"]


def _children() -> bool:
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as f:
                if f.read().strip():
                    return True
    return False


class _State:
    """The worker's process state as the host left it, and how to put it back."""

    def __init__(self, cache: str) -> None:
        self.cache = cache
        self.modules = set(sys.modules)
        self.environ = dict(_environ())
        self.path = list(sys.path)
        self.streams = (sys.stdin, sys.stdout, sys.stderr)
        root = logging.getLogger()
        self.logging = (list(root.handlers), root.level)
        self.warnings = list(warnings.filters)
        self.handlers = [(n, _getsignal(n)) for n in signal.valid_signals()]
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.recursion = sys.getrecursionlimit()
        self.between = os.dup(2)  # where descriptors 1 and 2 point between runs
        self.fds = _fds()
        self.rss = _memory()[0]
        os.chdir("/")

    def run(self, run: ClassRun, *, last: bool) -> Outcome:
        """Run ``run``, measured, then put the process back; why the worker must retire."""
        with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak resident memory starts again from here
        own, children = resource.getrusage(resource.RUSAGE_SELF), _rusage_children()
        stats, error = _run(run, self.cache)
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        after, children_after = resource.getrusage(resource.RUSAGE_SELF), _rusage_children()
        cpu = (after.ru_utime - own.ru_utime) + (after.ru_stime - own.ru_stime)
        cpu += children_after[0] - children[0]
        rss, peak = _memory()
        peak = max(peak, children_after[1] if children_after[1] > children[1] else 0)
        retire = self._restore(rss)
        if not retire and error is not None:
            retire = "the run failed"
        if not retire and last:
            retire = f"{MAX_RUNS} runs"
        return Outcome(cpu, peak / 1024**3, retire, stats, error)

    def _restore(self, rss: int) -> str:
        """Put back the host's process state; why it cannot be (a reason to retire)."""
        for fd in (1, 2):
            os.dup2(self.between, fd)
        os.chdir("/")
        _put_back_environ(self.environ)
        sys.path[:] = self.path
        sys.stdin, sys.stdout, sys.stderr = self.streams
        root = logging.getLogger()
        root.handlers[:], level = self.logging
        root.setLevel(level)
        warnings.filters[:] = self.warnings  # type: ignore[index]
        for number, handler in self.handlers:
            if handler is not None and _getsignal(number) != handler:
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(number, handler)
        os.umask(self.umask)
        sys.setrecursionlimit(self.recursion)
        retire = self._forget()
        linecache.clearcache()
        if threading.active_count() > 1:
            return "the run left a thread"
        if _children():
            return "the run left a child process"
        if _fds() != self.fds:
            return "the run left a descriptor open"
        if rss > self.rss + MAX_GROWTH:
            return "the run grew the worker's memory"
        return retire

    def _forget(self) -> str:
        """Forget the modules a run imported from the task's code (the standard library's
        stay); why the others cannot be (a reason to retire)."""
        retire = ""
        for name in sorted(set(sys.modules) - self.modules):
            how = _imported(sys.modules[name])
            if how == "task":
                del sys.modules[name]
            elif how == "standard":
                self.modules.add(name)
            elif not retire:
                retire = f"the run imported {name}, which cannot be imported afresh"
        return retire


#: Where the standard library lies (its modules may stay imported from one run to the next).
_STANDARD = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep
_PACKAGES = tuple(
    os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("purelib", "platlib")
)


def _imported(module: object) -> str:
    """Where a module came from: "task" (Python source of the task's directories, or one of
    their namespace packages), "standard" (the standard library, or Frazil's own pilot
    modules) or "other"."""
    spec = getattr(module, "__spec__", None)
    if spec is None:
        return "other"
    if spec.name.partition(".")[0] == "frazil":
        return "standard"  # the pilot's own code, wherever it is installed
    if isinstance(spec.loader, codecache.CachedSource):
        return "task"
    locations = spec.submodule_search_locations
    if spec.origin is None and locations:
        return "other" if any(codecache.own(p) for p in locations) else "task"
    if spec.origin in ("built-in", "frozen"):
        return "standard"
    origin = os.path.realpath(spec.origin or "")
    if origin.startswith(_STANDARD) and not origin.startswith(_PACKAGES):
        return "standard"
    return "other"


#: ``signal.getsignal`` without its conversion to enums (~60 µs a run for every signal).
_getsignal: Callable[[int], Any] = getattr(
    importlib.import_module("_signal"), "getsignal", signal.getsignal
)


def _environ() -> Mapping[Any, Any]:
    """The mapping behind ``os.environ`` (bytes to bytes: compared in C, nothing decoded)."""
    return getattr(os.environ, "_data", os.environ)


def _put_back_environ(saved: Mapping[Any, Any]) -> None:
    """Undo what a run changed in the environment (its own variables, and any it set)."""
    now = _environ()
    if now == saved:
        return
    for key in now.keys() - saved.keys():
        os.environ.pop(os.fsdecode(key), None)
    for key, value in saved.items():
        if now.get(key) != value:
            os.environ[os.fsdecode(key)] = os.fsdecode(value)


def _rusage_children() -> tuple[float, int]:
    """The CPU seconds and peak memory (bytes) of the waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def _run(run: ClassRun, cache: str) -> tuple[dict[str, Any], str | None]:
    """Take the task's descriptors and run the class; its statistics and error."""
    for fd, path in ((1, run.stdout), (2, run.stderr)):
        target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(target, fd)
        os.close(target)
    # sys.stdout, sys.stderr and the root logger's handler were set up line-buffered by the
    # host (``inherited_output``): they write to descriptors 1 and 2, the task's files now
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
    return stats, error
