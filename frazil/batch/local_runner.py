"""The wrapper process that the ``local`` batch plugin starts for every job.

Run as ``python -I local_runner.py --end END --run RUN --walltime S --grace G [--rlimit-as B]
-- argv...``, in its own session, with the job's environment and output files. It:

1. becomes a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``): every process the job
   leaves orphaned, in whatever session or process group, is re-parented to the runner
   instead of init, so the runner can always find the job's whole tree;
2. starts ``argv`` in a new process group, with ``RLIMIT_AS`` set to ``B`` bytes if given and
   ``PR_SET_PDEATHSIG`` (SIGKILL): the command dies if the runner is killed;
3. records its own pid and the command's pid in ``RUN`` (write temp + rename);
4. on walltime expiry or SIGTERM (a cancel), sends SIGTERM to the command's process group,
   then SIGKILL after ``G`` seconds;
5. when the command ends (or is killed: a SIGKILLed pilot leaves its modules behind), kills
   every process still below the runner, as a batch system does with a job's cgroup, and
   records the end state and exit code in ``END``, first writer wins; then exits 0.

Because the runner, not the daemon, supervises the job, a job keeps running and is still
accounted for when the daemon restarts. This module is also imported by the plugin for the
record helpers below, so it must stay standard library only (it runs without ``frazil`` on
the path).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_TICK = 0.1  # seconds between checks of the walltime and the cancel flag
#: prctl(2) options (linux/prctl.h).
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
#: How long the runner keeps killing what is left of a job's tree (forks included).
_TREE_DEADLINE = 10.0


def prctl(option: int, value: int) -> bool:
    """``prctl(option, value)`` through libc; False where it is unavailable or refused.
    (The pilot has its own copy: it may import nothing of this package.)"""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def descendants(root: int) -> list[int]:
    """Every live process below ``root``, from ``/proc`` (children before grandchildren)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError), os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] not in ("Z", "X"):
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def _reap() -> None:
    """Collect every exited child (orphans re-parented to the runner included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_tree() -> None:
    """SIGKILL every process left below the runner, until none is left (or the deadline)."""
    me = os.getpid()
    deadline = time.monotonic() + _TREE_DEADLINE
    while True:
        _reap()
        left = descendants(me)
        if not left or time.monotonic() > deadline:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def proc_start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])  # field 22 of proc(5)


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether ``pid`` runs and, if ``start_ticks`` is given, is the same process as then.

    Zombies count as dead: an orphaned runner may never be reaped when init does not reap.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): fall back to signal 0, which sees zombies as alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any], *, once: bool = False) -> bool:
    """Write ``data`` to ``path`` atomically (temp file + rename); readers never see half.

    With ``once``, the file is only created if it does not exist yet (temp file + hard link),
    and the return value says whether this call created it: the first end record wins.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        if not once:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class _Flag:
    cancelled = False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _stop(child: subprocess.Popen[bytes], grace: float) -> None:
    _signal_group(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(child.pid, signal.SIGKILL)
        child.wait()


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="local_runner")
    parser.add_argument("--end", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--walltime", type=float, required=True)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--rlimit-as", type=int, default=0)
    parser.add_argument("command", nargs="+")
    return parser.parse_args(argv)


def _end(path: Path, state: str, exit_code: int | None, reason: str) -> None:
    record = {"state": state, "exit_code": exit_code, "ended": time.time(), "reason": reason}
    write_json(path, record, once=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Supervise one job; see the module docstring. Always exits 0 once the end is recorded."""
    args = _parse(argv)
    flag = _Flag()

    def on_term(signum: int, frame: object) -> None:
        flag.cancelled = True

    # Installed before the command starts, so a cancel can never be lost in between.
    signal.signal(signal.SIGTERM, on_term)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    limit = args.rlimit_as
    runner = os.getpid()

    def prepare() -> None:  # runs in the child between fork and exec
        if limit > 0:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != runner:  # the runner died before the line above
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        child = subprocess.Popen(  # noqa: S603 - argv list, no shell
            args.command,
            stdin=subprocess.DEVNULL,
            preexec_fn=prepare,  # noqa: PLW1509 - the runner has no threads
            process_group=0,
        )
    except OSError as exc:
        print(f"frazil-local: cannot start {args.command[0]!r}: {exc}", file=sys.stderr)
        _end(args.end, "failed", 127, f"cannot start {args.command[0]!r}: {exc}")
        return 0
    run = {"pid": os.getpid(), "child": child.pid, "child_start": proc_start_ticks(child.pid)}
    write_json(args.run, run)
    deadline = time.monotonic() + args.walltime
    outcome = ""
    while child.poll() is None:
        if flag.cancelled:
            outcome = "cancelled"
        elif time.monotonic() >= deadline:
            outcome = "timeout"
            print(f"frazil-local: walltime of {args.walltime:g} s exceeded", file=sys.stderr)
        if outcome:
            _stop(child, args.grace)
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=_TICK)
    # What the command left behind dies with the job, as in Slurm: its group, and every
    # process below the runner in any group or session (a killed pilot's modules).
    _signal_group(child.pid, signal.SIGKILL)
    end_tree()
    code = child.returncode
    exit_code = code if code >= 0 else 128 - code
    if outcome == "timeout":
        _end(args.end, "timeout", exit_code, f"walltime of {args.walltime:g} s exceeded")
    elif outcome == "cancelled":
        _end(args.end, "cancelled", exit_code, "cancelled")
    elif code < 0:
        _end(args.end, "failed", exit_code, f"killed by {_signal_name(-code)}")
    else:
        _end(args.end, "completed" if code == 0 else "failed", exit_code, "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
