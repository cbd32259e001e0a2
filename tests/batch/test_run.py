"""The subprocess choke point, against real processes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from frazil.batch.local_runner import pid_alive
from frazil.batch.run import run_command, start_detached
from frazil.errors import BatchCommandError
from tests.batch.conftest import wait_until

PY = sys.executable


def test_success_returns_both_streams_and_timing() -> None:
    argv = [PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"]
    result = run_command(argv, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")
    assert result.argv == argv
    assert result.seconds > 0


def test_input_env_and_cwd_reach_the_command(tmp_path: Path) -> None:
    code = "import os, sys; print(sys.stdin.read(), os.environ.get('X'), os.environ.get('HOME'))"
    result = run_command([PY, "-c", code], timeout=30, env={"X": "y"}, cwd=tmp_path, input="hi")
    assert result.stdout == "hi y None\n"  # env replaces the environment, it does not add
    result = run_command(["/bin/pwd"], timeout=30, cwd=tmp_path)
    assert Path(result.stdout.strip()).resolve() == tmp_path.resolve()


def test_nonzero_exit_raises_with_argv_code_and_output() -> None:
    argv = ["/bin/sh", "-c", "echo partial; echo broken >&2; exit 3"]
    with pytest.raises(BatchCommandError) as info:
        run_command(argv, timeout=30)
    err = info.value
    assert (err.argv, err.returncode, err.stdout, err.stderr) == (argv, 3, "partial\n", "broken\n")
    assert "exit code 3" in str(err)
    assert "broken" in str(err)


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    # The shell's child would keep the pipes open (and run on) if only the shell were killed.
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    started = time.monotonic()
    with pytest.raises(BatchCommandError) as info:
        run_command(["/bin/sh", "-c", script], timeout=1.0)
    assert time.monotonic() - started < 10
    assert info.value.returncode is None
    assert "timed out after 1 s" in str(info.value)
    grandchild = int(pidfile.read_text())
    wait_until(lambda: not pid_alive(grandchild))


def test_missing_executable_raises_without_exit_code() -> None:
    argv = ["/nonexistent/sbatch", "--parsable"]
    with pytest.raises(BatchCommandError) as info:
        run_command(argv, timeout=5)
    assert info.value.argv == argv
    assert info.value.returncode is None
    assert "/nonexistent/sbatch" in str(info.value)


def test_start_detached_writes_to_files_in_a_new_session(tmp_path: Path) -> None:
    out, err = tmp_path / "logs" / "out", tmp_path / "logs" / "err"
    code = "import os, sys; print('to-out', os.getsid(0)); print('to-err', file=sys.stderr)"
    proc = start_detached([PY, "-c", code], stdout=out, stderr=err)
    assert proc.wait(timeout=30) == 0
    lines = out.read_text().split()
    assert lines[0] == "to-out"
    assert int(lines[1]) == proc.pid  # it leads its own session
    assert err.read_text() == "to-err\n"


def test_start_detached_missing_executable(tmp_path: Path) -> None:
    with pytest.raises(BatchCommandError, match="cannot start"):
        start_detached(["/nonexistent/x"], stdout=tmp_path / "o", stderr=tmp_path / "o")
