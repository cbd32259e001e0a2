"""Checking a config within its budget, in a child process that cannot stall anyone else.

Everything a check does (reading the YAML or JSON, the shape, the size caps, resolving the
jobs) runs in a process of its own, outside any database transaction, so that no config can
hold the server's interpreter or a write lock while it is being checked. The child is forked
from a fork server that has this module loaded (the server is threaded: it is never forked
itself) and limits itself before it starts: ``RLIMIT_CPU`` a little past the CPU budget
(``SIGXCPU`` ends the check there, ``SIGKILL`` a moment later if that did not), and
``RLIMIT_AS`` a few times the memory budget above what it holds, against a sudden burst. The
check spends its CPU budget cooperatively too, between the values it evaluates, so that a
config over budget is usually rejected at the place where the budget ran out. The parent
waits without holding anything, watches the child's resident memory (killing it past the
memory budget) and kills it at the wall-clock limit. At most ``concurrent`` checks run at
once; the others wait their turn.

The answer is a ``Checked`` config, or ``ConfigError`` with every problem, located; a config
over budget gets one problem that names the budget and the setting that sets it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from frazil.config import ValidationSettings
from frazil.errors import ConfigError, Problem
from frazil.loader import MAX_CONFIG_BYTES, inspect_text
from frazil.model.budget import Budget
from frazil.model.spec import DatasetConfig
from frazil.model.validate import JobsChecked, Limits, Plan

log = logging.getLogger(__name__)

#: CPU seconds past the budget at which the kernel ends the child (SIGXCPU, then SIGKILL).
_GRACE = 1
#: The child's address space may grow by this many times its memory budget (RLIMIT_AS).
_BACKSTOP = 4
#: How often the parent looks at the child's memory, in seconds.
_WATCH = 0.1


@dataclass(frozen=True)
class ConfigText:
    """A config as its author sent it: the text, where it came from, and its format."""

    text: str
    source: str = "<config>"
    fmt: str | None = None  # "json" or "yaml"; None: guessed from the source and the text

    @classmethod
    def of(cls, config: DatasetConfig) -> ConfigText:
        """A config model as JSON text (what the database stores)."""
        text = config.model_dump_json(by_alias=True, exclude_unset=True)
        return cls(text, "<config>", "json")

    @classmethod
    def read(cls, path: str | Path) -> ConfigText:
        """A config file; ``ConfigError`` if it cannot be read or is too large."""
        p = Path(path)
        try:
            size = p.stat().st_size
            if size > MAX_CONFIG_BYTES:
                problem = Problem("", f"file is {size} bytes; the limit is {MAX_CONFIG_BYTES}")
                raise ConfigError([problem], str(p))
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([Problem("", f"cannot read the file: {exc}")], str(p)) from exc
        return cls(text, str(p), "json" if p.suffix.lower() == ".json" else "yaml")


@dataclass(frozen=True)
class Checked:
    """A config that passed its check, and what the check looked at."""

    config: DatasetConfig
    warnings: tuple[Problem, ...]
    jobs: JobsChecked
    cpu_seconds: float


def cpu_budget_name(settings: ValidationSettings) -> str:
    """How a CPU budget is named in errors: its size and its setting."""
    return f"{settings.cpu_seconds:g} s of CPU time ([validation] cpu_seconds)"


def _over(what: str, doing: str, path: str = "") -> Problem:
    where = f" while {doing}" if doing else ""
    return Problem(path, f"the check of this config used up its budget of {what}{where}")


# -- the child -------------------------------------------------------------------------------


class _OutOfCPU(BaseException):
    """SIGXCPU arrived: the kernel's CPU limit, a little past the budget, was reached.

    A ``BaseException`` so that no ``except Exception`` on the way can swallow it.
    """


def _on_sigxcpu(_signum: int, _frame: FrameType | None) -> None:
    raise _OutOfCPU


def _memory(pid: int | str = "self") -> tuple[int, int]:
    """Bytes of address space and of resident memory of a process (0, 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            size, resident = f.read().split()[:2]
    except (OSError, ValueError):
        return 0, 0
    page = os.sysconf("SC_PAGE_SIZE")
    return int(size) * page, int(resident) * page


def _limit_self(settings: ValidationSettings) -> None:
    cpu = int(settings.cpu_seconds) + _GRACE
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + _GRACE))
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    # the parent watches the resident memory; this is only the backstop for a sudden burst
    # (a process that meets RLIMIT_AS can thrash in the kernel for seconds before it ends)
    memory = _memory()[0] + _BACKSTOP * settings.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def _check_in_child(
    conn: Connection,
    config: ConfigText,
    jobs: range,
    jobs_submitted: int | None,
    settings: ValidationSettings,
) -> None:
    """The child: check ``config`` within ``settings`` and send the outcome to ``conn``."""
    # the thread's CPU clock: once RLIMIT_CPU is set, Linux reads the process's CPU clock in
    # scheduler ticks (the same 0.0 before and after a job's check); the check is one thread
    budget = Budget(settings.cpu_seconds, time.thread_time, cpu_budget_name(settings))
    answer: tuple[Any, ...]
    try:
        _limit_self(settings)
        conn.send(("started", _memory()[1]))
        limits = Limits(settings.max_tasks, settings.max_modules, settings.max_expressions)
        plan = Plan(
            jobs=jobs,
            jobs_submitted=jobs_submitted,
            limits=limits,
            budget=budget,
            sweep_seconds=settings.jobs_seconds,
        )
        inspection = inspect_text(config.text, config.source, config.fmt, plan=plan)
        report = inspection.report
        checked = inspection.config
        text = None if checked is None or not report.ok else ConfigText.of(checked).text
        answer = ("done", report.problems, text, report.jobs, budget.used())
    except _OutOfCPU:
        answer = ("over", _over(budget.name, budget.doing, budget.path))
    except MemoryError:
        what = f"{settings.memory_mb} MB of memory ([validation] memory_mb)"
        answer = ("over", _over(what, budget.doing, budget.path))
    with contextlib.suppress(OSError):  # the parent may have stopped waiting (and kills us)
        conn.send(answer)
    conn.close()


# -- the parent ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _context() -> Any:
    """The fork server's context, with this module loaded in the fork server, and the
    modules that the main script imports (``_main_imports``)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__, *_main_imports()])
    return context


def _main_imports() -> list[str]:
    """The modules that the main script (a console script such as ``frazil``) imports.

    Every child of the fork server runs the parent's main script again (as ``__mp_main__``)
    before its target: preloading ``"__main__"`` was meant to do that once, in the fork
    server, but CPython (up to 3.13) never hands the fork server the script's path (it looks
    for a ``main_path`` key that its preparation data does not have). So each config check
    imported the whole command line, the web application included, ~0.5 s of CPU. With the
    modules that the script names loaded in the fork server, its run in a child only finds
    them imported. (A main module run by name, ``python -m``, is not run again at all.)
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        return []
    names = set()
    for key, value in vars(main).items():
        if key.startswith("__"):  # the module's own attributes (its loader, its builtins)
            continue
        name = (
            value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        )
        if isinstance(name, str) and name in sys.modules and name != "__main__":
            names.add(name)
    return sorted(names)


_gates: dict[int, threading.BoundedSemaphore] = {}
_gates_lock = threading.Lock()


def _gate(size: int) -> threading.BoundedSemaphore:
    with _gates_lock:
        return _gates.setdefault(size, threading.BoundedSemaphore(size))


def warm_up() -> None:
    """Start the fork server now and wait until it has loaded its modules (most of a
    second), so that the first submission is not the one that waits."""
    child = _context().Process(target=_nothing, name="frazil-validate-warm-up", daemon=True)
    child.start()
    child.join()


def _nothing() -> None:
    """A child's target that proves the fork server ready."""


def check(
    config: ConfigText | DatasetConfig,
    settings: ValidationSettings,
    *,
    jobs: range = range(1),
    jobs_submitted: int | None = None,
) -> Checked:
    """Check ``config`` for ``jobs`` (with ``$args(jobs_submitted)``, by default the end of
    ``jobs``) within the budget of ``settings``; ``ConfigError`` with every problem."""
    text = config if isinstance(config, ConfigText) else ConfigText.of(config)
    with _gate(settings.concurrent):
        answer = _run(text, jobs, jobs_submitted, settings)
    if answer[0] == "over":
        raise ConfigError([answer[1]], text.source)
    _, problems, normalized, jobs_checked, cpu = answer
    errors = [p for p in problems if p.severity == "error"]
    if errors or normalized is None:
        raise ConfigError(errors, text.source)
    return Checked(
        config=DatasetConfig.model_validate_json(normalized),
        warnings=tuple(p for p in problems if p.severity != "error"),
        jobs=jobs_checked,
        cpu_seconds=cpu,
    )


def _run(
    text: ConfigText, jobs: range, jobs_submitted: int | None, settings: ValidationSettings
) -> tuple[Any, ...]:
    """Run the check in a child; its answer, or an over-budget answer if it had to be ended."""
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_check_in_child,
        args=(sender, text, jobs, jobs_submitted, settings),
        name="frazil-validate",
        daemon=True,
    )
    deadline = time.monotonic() + settings.wall_seconds
    memory = settings.memory_mb * 1024 * 1024
    started: int | None = None  # the child's resident bytes when it began
    answered = False
    child.start()
    sender.close()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("a config check ran past %.0f s and was killed", settings.wall_seconds)
                what = f"{settings.wall_seconds:g} s of wall-clock time ([validation] wall_seconds)"
                return ("over", _over(what, ""))
            if started is not None and _memory(child.pid)[1] - started > memory:
                what = f"{settings.memory_mb} MB of memory ([validation] memory_mb)"
                return ("over", _over(what, ""))
            if receiver.poll(min(left, _WATCH)):
                try:
                    answer: tuple[Any, ...] = receiver.recv()
                except EOFError:  # the child died without a word: the kernel ended it
                    return ("over", _ended(child, settings))
                if answer[0] == "started":
                    started = answer[1]
                    continue
                answered = True
                return answer
    finally:
        receiver.close()
        child.join(timeout=5 if answered else 0)  # it ends by itself once it has answered
        if child.is_alive():
            child.kill()
            child.join(timeout=10)


def _ended(child: Any, settings: ValidationSettings) -> Problem:
    child.join(timeout=5)
    code = child.exitcode
    if code in (-signal.SIGKILL, -signal.SIGXCPU):  # RLIMIT_CPU (or RLIMIT_AS, then CPU)
        return _over(cpu_budget_name(settings), "")
    log.error("a config check ended with exit code %s", code)
    return Problem("", f"the check of this config failed (its process ended with code {code})")
