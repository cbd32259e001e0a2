"""The built-in module that runs a user's script or executable as a subprocess.

The command is an argv list and never goes through a shell, so arguments arrive as written.
stderr is passed through to the pilot's own stderr as it comes (it ends up in the job's log)
while its last few kilobytes are kept for the error report when the script fails.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import IO, ClassVar

from frazil.pilot.modules.base import REQUIRED, Module, ModuleError, Param

log = logging.getLogger(__name__)

#: How much of stderr's end a failure report quotes.
STDERR_TAIL_BYTES = 4096

#: Variables kept when ``env_clear`` starts the script from a clean environment.
BASIC_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "TZ")

#: How long to wait for the rest of stderr once the script has exited.
RELAY_GRACE_SECONDS = 5.0


class ScriptFailed(ModuleError):
    """A script exited with a non-zero code, was killed, or ran out of time."""

    def __init__(self, message: str, argv: list[str], exit_code: int, stderr_tail: str) -> None:
        self.argv = argv
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        super().__init__(message + (f"\n{stderr_tail}" if stderr_tail else ""))


class RunScript(Module):
    """Run a script or executable: ``.py`` under this Python, ``.sh`` under ``sh``."""

    parameters: ClassVar[Mapping[str, Param]] = {
        "script": Param(REQUIRED, "the script's path (from the task's directory) or a command"),
        "args": Param([], "arguments: a list, or a string split like a shell would"),
        "env": Param({}, "environment variables to set for the script"),
        "env_clear": Param(False, "start from a clean environment (PATH, HOME, … kept)"),
        "timeout": Param(0, "seconds before the script is killed; 0 for no limit"),
        "stdout": Param("", "file to write stdout to; empty to pass it through"),
    }

    def check(self) -> None:
        """Refuse parameters of the wrong type before the script is run."""
        self.param_str("script")
        self.param_strs("args", split=True)
        self.param_mapping("env")
        self.param_bool("env_clear")
        self.param_float("timeout")
        self.param_str("stdout")

    def argv(self) -> list[str]:
        """The command line that ``run`` executes."""
        script = self.param_str("script")
        path = self.path(script)
        args = self.param_strs("args", split=True)
        if path.is_file():
            if path.suffix == ".py":
                return [sys.executable, str(path), *args]
            if path.suffix == ".sh":
                return ["sh", str(path), *args]
            return [str(path), *args]
        if os.sep not in script:
            found = shutil.which(script, path=self._environment().get("PATH"))
            if found:
                return [found, *args]
        raise ModuleError(f"module {self.name}: no script or command {script!r} (in {path})")

    def run(self, stats: dict[str, float]) -> None:
        """Run the script and record ``exit_code``; a non-zero exit raises ``ScriptFailed``."""
        argv = self.argv()
        timeout = self.param_float("timeout") or None
        stdout_name = self.param_str("stdout")
        log.info("module %s: running %s", self.name, argv)
        with contextlib.ExitStack() as stack:
            stdout: IO[bytes] | None = None
            try:
                if stdout_name:
                    stdout = stack.enter_context(open(self.path(stdout_name), "ab"))
                process = subprocess.Popen(  # noqa: S603 - argv list from the config, no shell
                    argv,
                    cwd=self.workdir,
                    env=self._environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # its own group, so a timeout kills its children
                )
            except OSError as exc:
                raise ModuleError(f"module {self.name}: cannot run {argv[0]}: {exc}") from exc
            assert process.stderr is not None
            tail = _Tail()
            reader = threading.Thread(target=_relay, args=(process.stderr, tail), daemon=True)
            reader.start()
            try:
                code = process.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(process)
                code = process.wait()
                timed_out = True
            except BaseException:  # interrupted: leave nothing running behind us
                _kill_group(process)
                process.wait()
                raise
            # A background child may hold stderr open after the script exits: do not wait on it.
            reader.join(timeout=RELAY_GRACE_SECONDS)
        stats["exit_code"] = float(code)
        stderr_tail = tail.text()
        if timed_out:
            message = f"module {self.name}: {argv[0]} timed out after {timeout:g} s"
        elif code < 0:
            message = f"module {self.name}: {argv[0]} was killed by signal {-code}"
        elif code:
            message = f"module {self.name}: {argv[0]} exited with code {code}"
        else:
            return
        raise ScriptFailed(message, argv, code, stderr_tail)

    def _environment(self) -> dict[str, str]:
        if self.param_bool("env_clear"):
            env = {key: os.environ[key] for key in BASIC_ENV if key in os.environ}
        else:
            env = dict(os.environ)
        env.update(self.param_mapping("env"))
        return env


class _Tail:
    """The last ``STDERR_TAIL_BYTES`` of a stream, in whole lines where possible."""

    def __init__(self) -> None:
        self._lines: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()  # the relay may still be adding when the report is made

    def add(self, line: bytes) -> None:
        line = line[-STDERR_TAIL_BYTES:]
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            while self._size > STDERR_TAIL_BYTES and len(self._lines) > 1:
                self._size -= len(self._lines.popleft())

    def text(self) -> str:
        with self._lock:
            data = b"".join(self._lines)
        return data[-STDERR_TAIL_BYTES:].decode("utf-8", "replace").strip()


def _relay(stream: IO[bytes], tail: _Tail) -> None:
    """Copy ``stream`` to our stderr line by line, keeping its end in ``tail``."""
    with stream:
        for line in stream:
            try:
                sys.stderr.write(line.decode("utf-8", "replace"))
                sys.stderr.flush()
            except (OSError, ValueError):  # our stderr is closed: keep draining the pipe
                pass
            tail.add(line)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
