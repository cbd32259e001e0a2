"""The one place where the batch layer starts processes.

Commands are argv lists, never shell strings, so that a job name or a path can never be
parsed as shell syntax. Every failure comes back as ``BatchCommandError`` carrying the argv,
the exit code (``None`` when there was none), stdout and stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from frazil.errors import BatchCommandError

log = logging.getLogger(__name__)

# After a timeout kill, how long to wait for the pipes to drain before giving up on them: a
# grandchild that left the process group can hold them open forever.
_DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class CommandResult:
    """A command that exited with status 0."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_command(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    input: str | None = None,
) -> CommandResult:
    """Run ``argv`` to completion and return its output.

    ``env`` replaces the environment (as in ``subprocess``); ``None`` inherits ours. The command
    runs in its own session, so that on timeout the whole process group is killed, not just
    the first process. Raises ``BatchCommandError`` on a non-zero exit, on timeout (reason
    ``timed out after N s``) and when the executable cannot be started.
    """
    args = [str(a) for a in argv]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
            args,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise BatchCommandError(
            args, None, "", "", reason=f"cannot run {args[0]!r}: {exc}"
        ) from exc
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = _drain(proc)
        raise BatchCommandError(
            args, None, stdout, stderr, reason=f"timed out after {timeout:g} s"
        ) from None
    except BaseException:
        _kill_group(proc)  # KeyboardInterrupt and friends: leave no orphan behind
        proc.wait()
        raise
    seconds = time.monotonic() - started
    log.debug("%s: exit %d in %.2f s", args[0], proc.returncode, seconds)
    if proc.returncode != 0:
        raise BatchCommandError(args, proc.returncode, stdout, stderr)
    return CommandResult(args, proc.returncode, stdout, stderr, seconds)


def start_detached(
    argv: Sequence[str],
    *,
    stdout: Path,
    stderr: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, writing to the files ``stdout`` and ``stderr``.

    The process outlives us if we exit (it has no terminal and no pipes to us). The caller
    should ``poll()`` the returned handle now and then to reap it. Raises
    ``BatchCommandError`` when it cannot be started.
    """
    args = [str(a) for a in argv]
    try:
        stdout.parent.mkdir(parents=True, exist_ok=True)
        stderr.parent.mkdir(parents=True, exist_ok=True)
        with open(stdout, "wb") as out:
            if stderr == stdout:
                return _popen_detached(args, out, out, env, cwd)
            with open(stderr, "wb") as err:
                return _popen_detached(args, out, err, env, cwd)
    except OSError as exc:
        raise BatchCommandError(
            args, None, "", "", reason=f"cannot start {args[0]!r}: {exc}"
        ) from exc


def _popen_detached(
    args: list[str],
    out: IO[bytes],
    err: IO[bytes],
    env: Mapping[str, str] | None,
    cwd: Path | str | None,
) -> subprocess.Popen[bytes]:
    # The child keeps its own copies of the descriptors; ours are closed by the caller.
    return subprocess.Popen(  # noqa: S603 - argv list, no shell
        args,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: pgid == pid


def _drain(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        stdout, stderr = proc.communicate(timeout=_DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()
        return "", ""
    return stdout, stderr
