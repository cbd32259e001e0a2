"""The config commands, run as the real ``frazil`` program."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLE, ROOT


def frazil(*args, check=False):
    return subprocess.run(
        [sys.executable, "-m", "frazil", *map(str, args)],
        capture_output=True,
        text=True,
        check=check,
    )


def test_validate_the_example():
    result = frazil("validate", EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "6 tasks" in result.stdout


def test_validate_a_broken_copy_exits_1_with_file_line_path(tmp_path, example_text):
    bad = tmp_path / "bad.yaml"
    bad.write_text(example_text.replace("$steering(nevents) / 4000)", "$steering(nevent) / 4000)"))
    result = frazil("validate", bad)
    assert result.returncode == 1
    line = next(n for n, t in enumerate(bad.read_text().splitlines(), 1) if "nevent)" in t)
    assert f"{bad}:{line}: tasks[2].requirements.time: no steering value 'nevent'" in result.stderr


def test_expr_padding_and_errors():
    result = frazil("expr", '$sprintf("%06d", $args(job))', "--job", 3)
    assert (result.returncode, result.stdout) == (0, "000003\n")
    result = frazil("expr", "$steering(x)")
    assert result.returncode == 1 and "no steering value 'x'" in result.stderr
    result = frazil("expr", "$eval(1 +)")
    assert result.returncode == 1 and "syntax error" in result.stderr


def test_expr_in_a_config_scope():
    result = frazil(
        "expr",
        "$(season) $args(task) $args(iter)",
        "-c",
        EXAMPLE,
        "--task",
        "detector_2020",
        "--tray",
        0,
    )
    assert result.stdout == "IC86.2020 detector_2020 0\n"
    result = frazil("expr", "$(half)", "-c", EXAMPLE, "--task", "nugen", "--tray", 0, "--module", 0)
    assert result.stdout == "1000\n"
    result = frazil("expr", "$steering(nugen)", "-c", EXAMPLE)
    assert json.loads(result.stdout)["flavor"] == "NuMu"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "nope"], "no task 'nope'"),
        (["--task", "nugen", "--tray", 9], "has 2 tray(s)"),
        (["--module", 0], "--tray and --module need --task"),
    ],
)
def test_expr_scope_errors(args, message):
    result = frazil("expr", "$(x)", "-c", EXAMPLE, *args)
    assert result.returncode == 2 and message in result.stderr


def test_show_prints_the_dag_and_commands():
    result = frazil("show", "config", EXAMPLE, "--job", 3, "--dataset", 21000)
    assert result.returncode == 0, result.stderr
    assert "photon_propagation" in result.stdout and "gpu 1" in result.stdout
    assert "level2_000003.jsonl" in result.stdout


def test_show_json_is_the_resolved_job():
    result = frazil("show", "config", EXAMPLE, "--json", "--job", 2)
    tasks = json.loads(result.stdout)
    assert [t["name"] for t in tasks][-1] == "level2"
    assert tasks[0]["requirements"]["cpu"] == 1


def test_show_refuses_an_invalid_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [{name: a, depends: [a], trays: [{modules: [{src: x}]}]}]\n")
    result = frazil("show", "config", bad)
    assert result.returncode == 1 and "depends on itself" in result.stderr


def test_schema_is_json_schema():
    schema = json.loads(frazil("schema", check=True).stdout)
    assert schema["title"] == "Frazil dataset config"


def test_expr_sees_the_callers_environment(monkeypatch):
    monkeypatch.setenv("FRAZIL_TEST_VALUE", "from-env")
    assert frazil("expr", "$environ(FRAZIL_TEST_VALUE)").stdout == "from-env\n"
    result = frazil("expr", "$environ(FRAZIL_TEST_VALUE)", "-c", EXAMPLE)
    assert result.stdout == "from-env\n"


def test_validate_warns_of_a_module_that_only_this_machine_has(tmp_path):
    (tmp_path / "mine.py").write_text("print('hi')\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        "tasks:\n  - name: a\n    trays:\n      - modules:\n          - src: mine.py\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (tmp_path, elsewhere):  # beside the config, or in the current directory
        result = subprocess.run(
            [sys.executable, "-m", "frazil", "validate", str(config)], cwd=cwd, check=False,
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "1 warning(s)" in result.stdout
        assert result.stderr.replace("\n", " ").startswith(
            f"warning {config}:5: tasks[0].trays[0].modules[0].src: module 'mine.py': "
            "'mine.py' is a relative path that resolves on this machine only"
        ), result.stderr
        assert "the site will not see it" in result.stderr.replace("\n", " ")
