"""RunScript runs real subprocesses: Python and shell scripts, executables, failures."""

import json
import sys
from pathlib import Path

import pytest

from frazil.pilot.modules import ModuleError, RunScript, ScriptFailed

PY_SCRIPT = """\
import json, os, sys
with open("result.json", "w") as out:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}, out)
print("to stdout")
"""


def _result(workdir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((workdir / "result.json").read_text())
    return data


def test_a_python_script_runs_under_this_python(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(PY_SCRIPT)
    stats: dict[str, float] = {}
    module = RunScript(
        {"script": "job.py", "args": ["--n", 3, "two words"], "env": {"FRAZIL_X": "1"}},
        workdir=tmp_path,
    )

    module.run(stats)

    result = _result(tmp_path)
    assert result["argv"] == ["--n", "3", "two words"]
    assert result["cwd"] == str(tmp_path)
    env = result["env"]
    assert isinstance(env, dict)
    assert env["FRAZIL_X"] == "1"
    assert stats == {"exit_code": 0.0}
    assert module.argv()[0] == sys.executable


def test_args_given_as_a_string_are_split_like_a_shell(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(PY_SCRIPT)
    RunScript({"script": "job.py", "args": "-a 'b c' d"}, workdir=tmp_path).run({})
    assert _result(tmp_path)["argv"] == ["-a", "b c", "d"]


def test_a_shell_script_runs_under_sh(tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text('printf "%s|" "$@" > out.txt\n')  # not executable: sh runs it
    module = RunScript(
        {"script": "job.sh", "args": ["x y", "$HOME", ";rm -rf /"]}, workdir=tmp_path
    )
    module.run({})
    assert (tmp_path / "out.txt").read_text() == "x y|$HOME|;rm -rf /|"  # no shell expansion
    assert module.argv()[0] == "sh"


def test_an_executable_runs_directly(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\necho ran > ran.txt\n")
    script.chmod(0o755)
    RunScript({"script": "tool"}, workdir=tmp_path).run({})
    assert (tmp_path / "ran.txt").read_text() == "ran\n"


def test_a_command_on_the_path(tmp_path: Path) -> None:
    stats: dict[str, float] = {}
    RunScript({"script": "true"}, workdir=tmp_path).run(stats)
    assert stats == {"exit_code": 0.0}


def test_a_failing_script_reports_its_exit_code_and_stderr(tmp_path: Path) -> None:
    (tmp_path / "fail.py").write_text(
        "import sys\nprint('x' * 10000, file=sys.stderr)\nprint('the cause', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    stats: dict[str, float] = {}

    with pytest.raises(ScriptFailed) as caught:
        RunScript({"script": "fail.py"}, workdir=tmp_path, name="reco").run(stats)

    error = caught.value
    assert error.exit_code == 3
    assert "module reco" in str(error)
    assert "exited with code 3" in str(error)
    assert error.stderr_tail.endswith("the cause")
    assert len(error.stderr_tail) <= 4096
    assert stats == {"exit_code": 3.0}


def test_a_timeout_kills_the_script(tmp_path: Path) -> None:
    (tmp_path / "slow.sh").write_text("sleep 30 &\nsleep 30\n")
    stats: dict[str, float] = {}
    with pytest.raises(ScriptFailed, match=r"timed out after 0.3 s"):
        RunScript({"script": "slow.sh", "timeout": 0.3}, workdir=tmp_path).run(stats)
    assert stats["exit_code"] < 0


def test_stdout_to_a_file_and_a_clean_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAZIL_SECRET", "do not leak")
    (tmp_path / "job.py").write_text(PY_SCRIPT)
    params = {"script": "job.py", "env_clear": True, "env": {"A": 1}, "stdout": "out.log"}

    RunScript(params, workdir=tmp_path).run({})

    env = _result(tmp_path)["env"]
    assert isinstance(env, dict)
    assert "FRAZIL_SECRET" not in env
    assert env["A"] == "1"
    assert "PATH" in env
    assert (tmp_path / "out.log").read_text() == "to stdout\n"


def test_a_missing_script_is_a_module_error(tmp_path: Path) -> None:
    with pytest.raises(ModuleError, match=r"no script or command 'nope.py'"):
        RunScript({"script": "nope.py"}, workdir=tmp_path).run({})
    with pytest.raises(ModuleError, match="no script or command"):
        RunScript({"script": "frazil-no-such-command-anywhere"}, workdir=tmp_path).run({})


def test_a_file_that_cannot_be_executed(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")  # no suffix, not executable
    with pytest.raises(ModuleError, match="cannot run"):
        RunScript({"script": "data.bin"}, workdir=tmp_path).run({})
