"""The database commands, run as the real ``frazil`` program on a SQLite file."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLE


@pytest.fixture
def frazil(tmp_path):
    base = {**os.environ, "FRAZIL_HOME": str(tmp_path / "home")}
    base.pop("FRAZIL_DB_URL", None)

    def run(*args, ok=True, env=None):
        argv = [sys.executable, "-m", "frazil", *map(str, args)]
        result = subprocess.run(
            argv, capture_output=True, text=True, env={**base, **(env or {})}, check=False
        )
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    return run


def test_commands_need_a_server_or_a_database_and_never_make_one(frazil, tmp_path):
    for command in (["datasets"], ["status", "sim"], ["submit", EXAMPLE], ["token", "list"]):
        result = frazil(*command, ok=False)
        assert result.returncode == 1, command
        (line,) = result.stderr.splitlines()
        assert "no database at" in line and "frazil init" in line, line
        assert not (tmp_path / "home" / "frazil.db").exists()
    assert "frazil login URL" in frazil("datasets", ok=False).stderr


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


def _mode(path):
    return os.stat(path).st_mode & 0o777


def test_init_makes_the_home_and_the_database_private(tmp_path):
    """Under the usual umask (022), ``frazil init`` still makes the home 0700 and every
    SQLite file 0600; an older, looser home and database are tightened."""
    home = tmp_path / "home"
    env = {**os.environ, "FRAZIL_HOME": str(home)}
    env.pop("FRAZIL_DB_URL", None)
    argv = [sys.executable, "-m", "frazil", "init"]

    def init():
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, check=True,
            preexec_fn=lambda: os.umask(0o022),
        )  # fmt: skip

    init()
    assert _mode(home) == 0o700
    files = [p for p in home.iterdir() if p.name.startswith("frazil.db")]
    assert home / "frazil.db" in files
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    os.chmod(home, 0o755)
    os.chmod(home / "frazil.db", 0o644)
    result = init()
    assert _mode(home) == 0o700 and _mode(home / "frazil.db") == 0o600
    said = " ".join(result.stdout.split())  # Rich wraps long paths at the terminal's width
    assert "was readable by others (0644): now 0600" in said


def test_stats_are_paged_by_name(frazil, tmp_path):
    from frazil.model.records import SiteResources
    from frazil.services import attempts
    from frazil.services.claim import claim
    from frazil.store import Database
    from frazil.wire import Finish

    frazil("init")
    frazil("submit", EXAMPLE, "--jobs", 1, "--name", "sim")
    db = Database(f"sqlite:///{tmp_path / 'home' / 'frazil.db'}")
    site = SiteResources(name="s", cpu=8, gpu=1, memory=64, disk=100)
    c = claim(db, site, 1, 1.0)[0]
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=2.0)
    done = Finish(stats={"alpha": 1.0, "beta": 2.0, "gamma": 3.0})
    attempts.finish(db, c.task_id, c.attempt, c.passkey, done, now=3.0)
    db.dispose()
    first = frazil("stats", "sim", "--limit", 2)
    assert "alpha" in first.stdout and "beta" in first.stdout and "gamma" not in first.stdout
    assert "more: frazil stats sim --after beta" in first.stderr  # a pipe gets only the rows
    rest = frazil("stats", "sim", "--after", "beta")
    assert "gamma" in rest.stdout and "alpha" not in rest.stdout and "more:" not in rest.stderr
    page = json.loads(frazil("stats", "sim", "--limit", 1, "--after", "alpha", "--json").stdout)
    assert [(s["name"], s["task_name"]) for s in page] == [("beta", "*"), ("beta", c.name)]


HOSTILE = "[/] [bold red]x[/bold red] \x1b[2J\x1b]0;owned\x07 \u202eevil :smile:"


def test_hostile_text_is_printed_as_text(frazil, tmp_path):
    """Descriptions, pilots' error texts, host names and statistic names are somebody else's
    text: listing them neither crashes on rich markup nor sends escape codes."""
    from frazil.model.records import SiteResources
    from frazil.services import attempts
    from frazil.services.claim import claim
    from frazil.services.submit import submit
    from frazil.store import Database
    from frazil.wire import Failure
    from tests.services.conftest import make_config

    frazil("init")
    db = Database(f"sqlite:///{tmp_path / 'home' / 'frazil.db'}")
    config = make_config("flat", 1).model_copy(update={"description": HOSTILE})
    submit(db, config, jobs=1, now=1.0, owner="\x1b[31mmallory", alias="sim", debug=True)
    (c,) = claim(db, SiteResources(name="site-a"), 1, 2.0)
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=3.0, host="node\x1b[31mEVIL\x1b[0m")
    failure = Failure(f"[/red] {HOSTILE}\nline 2", stats={"[/]\x1b[1mstat": 1.0})
    attempts.fail(db, c.task_id, c.attempt, c.passkey, failure, now=4.0)
    db.dispose()
    shown = "\\[/] \\[bold red]x\\[/bold red] \\x1b[2J\\x1b]0;owned\\x07 \\u202eevil :smile:"
    wide = {"COLUMNS": "400"}
    for args, expected in (
        (["datasets"], ["\\x1b[31mmallory", shown[:60]]),
        (
            ["show", "task", c.task_id, "--verbose"],
            ["node\\x1b[31mEVIL\\x1b[0m", f"\\[/red] {shown}\nline 2"],
        ),
        (["tasks", "sim"], ["site-a"]),
        (["stats", "sim"], ["\\[/]\\x1b[1mstat"]),
        (["status", "sim"], ["dataset 1 (sim): processing [debug], priority 1"]),
    ):
        result = frazil(*args, env=wide)
        assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
        for text in expected:
            assert text.replace("\\[", "[") in result.stdout, (args, text, result.stdout)


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
