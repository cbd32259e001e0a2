"""The database commands, run as the real ``frazil`` program on a SQLite file."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLE


@pytest.fixture
def frazil(tmp_path):
    env = {**os.environ, "FRAZIL_HOME": str(tmp_path / "home")}
    env.pop("FRAZIL_DB_URL", None)

    def run(*args, ok=True):
        argv = [sys.executable, "-m", "frazil", *map(str, args)]
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    return run


def test_commands_need_init_first(frazil):
    result = frazil("datasets", ok=False)
    assert result.returncode == 1
    assert "run `frazil init`" in result.stderr and "Traceback" not in result.stderr


def test_submit_status_control_and_json(frazil, tmp_path):
    frazil("init")
    assert (tmp_path / "home" / "frazil.db").exists()
    out = frazil("submit", EXAMPLE, "--jobs", 4, "--name", "sim", "--json").stdout
    dataset = json.loads(out)["dataset"]
    listed = json.loads(frazil("datasets", "--json").stdout)
    assert [(d["id"], d["alias"], d["status"]) for d in listed] == [(dataset, "sim", "processing")]
    status = json.loads(frazil("status", "sim", "--json").stdout)
    assert status["counts"]["corsika"] == {"waiting": 4}
    assert status["counts"]["level2"] == {"idle": 4}
    assert "corsika" in frazil("status", dataset).stdout

    assert "suspend: 6 task(s)" in frazil("suspend", "sim", "--job", 1, "-r", "check inputs").stdout
    jobs = json.loads(frazil("jobs", "sim", "--json").stdout)
    assert [j["status"] for j in jobs] == ["processing", "suspended", "processing", "processing"]
    assert "resume: 6 task(s)" in frazil("resume", "sim", "--job", 1).stdout

    tasks = json.loads(frazil("tasks", "sim", "--status", "waiting", "--json").stdout)
    assert len(tasks) == 8 and {t["name"] for t in tasks} == {"corsika", "nugen"}
    detail = json.loads(frazil("show", "task", tasks[0]["id"], "--json").stdout)
    assert detail["task"]["name"] == "corsika" and detail["attempts"] == []
    reset = frazil("hard-reset", "sim", "--task", "photon_propagation").stdout
    assert "hard-reset: 16 task(s)" in reset  # the task and its downstream, in 4 jobs
    frazil("set-priority", "sim", 3)
    assert json.loads(frazil("datasets", "--json").stdout)[0]["priority"] == 3.0
    assert frazil("stats", "sim", "--json").stdout.strip() == "[]"


def test_errors_are_one_line(frazil, tmp_path):
    frazil("init")
    result = frazil("status", "nope", ok=False)
    assert (result.returncode, result.stderr.strip()) == (1, "error no dataset 'nope'")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [{name: a, trays: [{modules: [{src: '$steering(x)'}]}]}]\n")
    result = frazil("submit", bad, ok=False)
    assert result.returncode == 1
    assert "tasks[0].trays[0].modules[0].src: no steering value 'x'" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(frazil("datasets", "--json").stdout) == []
    frazil("submit", EXAMPLE, "--name", "x")
    result = frazil("submit", EXAMPLE, "--name", "x", ok=False)
    assert "taken" in result.stderr


def test_background_materialization_command(frazil):
    frazil("init")
    frazil("submit", EXAMPLE, "--jobs", 2500, "--name", "big")
    status = json.loads(frazil("status", "big", "--json").stdout)
    assert status["dataset"]["jobs_materialized"] == 2000
    assert "created 500 jobs" in frazil("materialize").stdout
    status = json.loads(frazil("status", "big", "--json").stdout)
    assert status["dataset"]["jobs_materialized"] == 2500


def test_settings_file_names_the_database(frazil, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    other = tmp_path / "elsewhere.db"
    (home / "frazil.toml").write_text(f'db_url = "sqlite:///{other}"\n')
    frazil("init")
    assert other.exists() and not (home / "frazil.db").exists()
    (home / "frazil.toml").write_text("db_ur = 1\n")
    result = frazil("datasets", ok=False)
    assert "unknown setting(s): db_ur" in result.stderr


def test_quotas_from_the_command_line(frazil):
    frazil("init")
    result = frazil("submit", EXAMPLE, "--jobs", 100_000_000, ok=False)
    assert "at most 1000000 jobs in one dataset" in result.stderr
    assert "Traceback" not in result.stderr
    frazil("quota", "set", "carol", "--dataset-jobs", 10, "--tasks", 30)
    (carol,) = json.loads(frazil("quota", "show", "carol", "--json").stdout)
    assert (carol["dataset_jobs"], carol["tasks"], carol["jobs"]) == (10, 30, 2_000_000)
    assert carol["overridden"] == ["dataset_jobs", "tasks"]
    assert [q["submitter"] for q in json.loads(frazil("quota", "show", "--json").stdout)] == [
        "carol"
    ]
    frazil("quota", "clear", "carol")
    assert json.loads(frazil("quota", "show", "--json").stdout) == []
