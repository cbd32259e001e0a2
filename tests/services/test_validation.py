"""A config's check in a child process, within its budget of CPU time, memory and wall time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from frazil.config import ValidationSettings
from frazil.errors import ConfigError
from frazil.services.validation import ConfigText, check
from tests.conftest import EXAMPLE

ROOT = Path(__file__).resolve().parents[2]


def modules(n: int, args: str) -> str:
    lines = "".join(f"          - {{src: run.sh, args: '{args}'}}\n" for _ in range(n))
    return f"tasks:\n  - name: t\n    trays:\n      - modules:\n{lines}"


HEAVY = modules(3000, "$eval(len(str([[1] * 150] * 150)))")  # seconds per job


def problem_of(text: str, settings: ValidationSettings, **options) -> str:
    with pytest.raises(ConfigError) as info:
        check(ConfigText(text, "x.yaml"), settings, **options)
    (problem,) = info.value.problems
    return str(problem)


def test_a_good_config_comes_back_checked():
    checked = check(
        ConfigText(EXAMPLE.read_text(), str(EXAMPLE)), ValidationSettings(), jobs=range(5)
    )
    assert [t.name for t in checked.config.tasks][:2] == ["corsika", "nugen"]
    assert (checked.jobs.checked, checked.jobs.total, checked.jobs.sampled) == (5, 5, False)
    assert 0 < checked.cpu_seconds < 5


def test_problems_come_back_located():
    text = "tasks:\n  - name: t\n    trays: [{modules: [{src: '$steering(nope)'}]}]\n"
    with pytest.raises(ConfigError) as info:
        check(ConfigText(text, "bad.yaml"), ValidationSettings())
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == ("tasks[0].trays[0].modules[0].src", 3)
    assert "bad.yaml" in str(info.value)


def test_cpu_time_over_the_budget_is_refused_where_it_ran_out():
    started = time.monotonic()
    problem = problem_of(HEAVY, ValidationSettings(cpu_seconds=1))
    assert "tasks[0].trays[0].modules[" in problem
    assert "used up its budget of 1 s of CPU time ([validation] cpu_seconds)" in problem
    assert "while checking job 0" in problem
    assert time.monotonic() - started < 10


def test_memory_over_the_budget_is_refused():
    rows = "\n".join(f"    - [{i}, {i}, {i}, {i}]" for i in range(8_000))
    text = f"steering:\n  parameters:\n    table:\n{rows}\n" + modules(1, "$args(job)")
    check(ConfigText(text, "x.yaml"), ValidationSettings())  # fine with the default 512 MB
    problem = problem_of(text, ValidationSettings(memory_mb=16))
    assert "used up its budget of 16 MB of memory ([validation] memory_mb)" in problem, problem


def test_a_check_past_its_wall_time_is_killed():
    started = time.monotonic()
    problem = problem_of(HEAVY, ValidationSettings(cpu_seconds=60, wall_seconds=1))
    assert problem.endswith(
        "used up its budget of 1 s of wall-clock time ([validation] wall_seconds)"
    )
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ValidationSettings(max_tasks=0), "1 tasks; a config may have at most 0"),
        (ValidationSettings(max_modules=2), "3 modules; a config may have at most 2"),
        (ValidationSettings(max_expressions=2), "3 expressions; a config may have at most 2"),
    ],
)
def test_the_caps_come_from_the_settings(settings, message):
    assert message in problem_of(modules(3, "$args(job)"), settings)


def test_the_fork_server_loads_what_a_console_script_imports(tmp_path):
    """Each check's child runs the parent's main script again (multiprocessing does); the
    modules that script names are loaded in the fork server, so that costs no import."""
    script = tmp_path / "console"
    script.write_text(
        "from json.decoder import JSONDecoder\n"
        "import frazil.services.validation as v\n"
        "print(','.join(v._main_imports()))\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert set(run.stdout.strip().split(",")) == {"frazil.services.validation", "json.decoder"}
    (tmp_path / "by_name.py").write_text(script.read_text())
    by_name = subprocess.run(
        [sys.executable, "-m", "by_name"], capture_output=True, text=True, check=True,
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert by_name.stdout.strip() == ""  # run by name: multiprocessing does not run it again
