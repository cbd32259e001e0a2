"""Running one module: a script or executable as a measured subprocess, or a Python class.

A subprocess runs in its own process group, with its output appended to the task's stdout
and stderr files; its CPU time and peak memory come from ``wait4``. A module may record
statistics by writing ``frazil_stats.json`` (name → number) in its working directory.

A module's process dies with the pilot (``PR_SET_PDEATHSIG``, SIGKILL): a pilot killed
outright leaves no module running beside the task's retry. (The signal follows the death of
the thread that started the module, which waits for it; what the module itself starts in
other sessions is the batch system's to end: the local plugin's runner, Slurm's cgroups.)
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frazil.errors import FrazilError
from frazil.pilot import classrun

log = logging.getLogger(__name__)

STATS_FILE = "frazil_stats.json"
#: Variables a module keeps when its environment is cleared.
KEEP = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SHELL",
    "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
)  # fmt: skip


#: prctl(2) option (linux/prctl.h): the signal a process gets when its parent thread dies.
PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get SIGKILL when this process (the thread that
    starts it) dies; if this process died before that took effect, the child ends at once."""
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: nothing to arrange
        return lambda: None

    def arrange() -> None:  # in the child, between fork and exec: no imports, no locks
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return arrange


class ModuleFailed(FrazilError):
    """A module ended with an error; ``exit_code`` is set for subprocesses."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Measured:
    """What running a module cost."""

    wall_time: float  # seconds
    cpu_time: float  # seconds
    max_memory: float  # GB


def module_environment(clear: bool, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a module starts with."""
    if clear:
        env = {k: v for k, v in os.environ.items() if k in KEEP or k.startswith("FRAZIL_")}
    else:
        env = dict(os.environ)
    env.update(extra)
    return env


def command_for(path: str) -> list[str]:
    """How to start a module source: ``.py`` under this Python, ``.sh`` under sh."""
    if path.endswith(".py"):
        return [sys.executable, path]
    if path.endswith(".sh"):
        return ["sh", path]
    return [path]


class Runner:
    """Runs modules in a working directory; ``stop()`` ends the one that is running."""

    def __init__(self, workdir: Path, stdout: Path, stderr: Path) -> None:
        self.workdir = workdir
        self.stdout = stdout
        self.stderr = stderr
        self._pid: int | None = None  # the running module's process (its group's leader)
        self._class_run: classrun.Handle | None = None  # or the running class run
        self.stopped = False  # once stopped, a module started later is ended at once

    def stop(self) -> None:
        """Terminate the running module's whole process group (from a signal handler), and
        any module started after this (a stop that came just before its process existed)."""
        self.stopped = True
        handle = self._class_run
        if handle is not None:
            handle.stop()
            return
        pid = self._pid
        if pid is None:
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:  # not yet a group of its own (a class run just forked)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def subprocess(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Measured:
        """Run ``argv`` as module ``name``; ``ModuleFailed`` on a non-zero exit."""
        log.info("module %s: %s", name, " ".join(argv))
        started = time.monotonic()
        with self.stdout.open("ab") as out, self.stderr.open("ab") as err:
            err.write(f"--- module {name} ---\n".encode())
            err.flush()
            try:
                process = subprocess.Popen(  # noqa: S603 - argv from the resolved spec, no shell
                    list(argv), cwd=self.workdir, env=dict(env), stdout=out, stderr=err,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                    preexec_fn=die_with_parent(),  # noqa: PLW1509 - one libc call, see there
                )  # fmt: skip
            except OSError as exc:
                raise ModuleFailed(f"module {name}: cannot start {argv[0]}: {exc}") from exc
            self._pid = process.pid
            if self.stopped:  # stopped while it was being started
                self.stop()
            try:
                _, status, usage = os.wait4(process.pid, 0)
            finally:
                self._pid = None
            process.returncode = code = os.waitstatus_to_exitcode(status)
        measured = Measured(
            wall_time=time.monotonic() - started,
            cpu_time=usage.ru_utime + usage.ru_stime,
            max_memory=usage.ru_maxrss / 1024 / 1024,  # KB -> GB
        )
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            tail = _tail(self.stderr)
            raise ModuleFailed(
                f"module {name} {how}" + (f"; stderr ends with:\n{tail}" if tail else ""),
                exit_code=code if code >= 0 else 128 - code,
            )
        return measured

    def python_class(
        self, name: str, class_name: str, params: Mapping[str, Any], *,
        paths: Sequence[Path] = (), env: Mapping[str, str] | None = None,
    ) -> tuple[Measured, dict[str, float]]:  # fmt: skip
        """Run a ``Module`` subclass in a worker of the module host (``classrun``), its code
        imported afresh, found first in ``paths``; returns its cost and statistics."""
        log.info("module %s: class %s", name, class_name)
        with self.stderr.open("ab") as err:
            err.write(f"--- module {name} ---\n".encode())
        run = classrun.ClassRun(
            name=name, class_name=class_name, params=dict(params), workdir=str(self.workdir),
            stdout=str(self.stdout), stderr=str(self.stderr),
            sys_path=(*map(str, paths), *sys.path), env=dict(env or {}),
        )  # fmt: skip
        started = time.monotonic()
        try:
            handle = classrun.start(run)
            self._class_run = handle
            if self.stopped:  # stopped while it was being started
                handle.stop()
            try:
                ended = handle.wait()
            finally:
                self._class_run = None
        except classrun.HostGone as exc:
            raise ModuleFailed(f"module {name}: {exc}") from exc
        wall = time.monotonic() - started
        if not ended.finished:
            code = os.waitstatus_to_exitcode(ended.status)
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            tail = _tail(self.stderr)
            raise ModuleFailed(
                f"module {name} {how} before it finished"
                + (f"; stderr ends with:\n{tail}" if tail else ""),
                exit_code=code if code >= 0 else 128 - code,
            )
        if ended.error:
            raise ModuleFailed(str(ended.error))
        measured = Measured(wall, ended.cpu_time, ended.max_memory)
        return measured, numbers(name, ended.stats, "its statistics")

    def collect_stats(self, name: str) -> dict[str, float]:
        """Statistics a subprocess module left in ``frazil_stats.json`` (the file is removed)."""
        path = self.workdir / STATS_FILE
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ModuleFailed(f"module {name}: {STATS_FILE} is not JSON: {exc}") from exc
        finally:
            path.unlink(missing_ok=True)
        return numbers(name, data, STATS_FILE)


def numbers(name: str, data: Any, where: str) -> dict[str, float]:
    """A module's statistics (name → number) from ``where``; NaN and infinities left out."""
    if not isinstance(data, dict):
        raise ModuleFailed(f"module {name}: {where} must hold an object of numbers")
    stats = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModuleFailed(f"module {name}: statistic {key!r} is not a number: {value!r}")
        if not abs(value) <= sys.float_info.max:  # NaN, infinities: JSON cannot carry them
            log.warning("module %s: statistic %r is %r; left out", name, key, value)
            continue
        stats[str(key)] = float(value)
    return stats


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""
