from pathlib import Path

import pytest

from frazil.config import default_db_url, load_settings
from frazil.errors import SettingsError


def test_defaults(tmp_path):
    s = load_settings({"HOME": str(tmp_path), "FRAZIL_HOME": str(tmp_path / "fh")})
    assert s.home == tmp_path / "fh"
    assert s.db_url == f"sqlite:///{tmp_path / 'fh' / 'frazil.db'}" == default_db_url(s.home)
    assert s.is_default_sqlite


def test_environment_beats_file(tmp_path):
    (tmp_path / "frazil.toml").write_text('db_url = "sqlite:////from/file.db"\n')
    assert load_settings({"FRAZIL_HOME": str(tmp_path)}).db_url == "sqlite:////from/file.db"
    env = {"FRAZIL_HOME": str(tmp_path), "FRAZIL_DB_URL": "postgresql+psycopg://x@y/z"}
    assert load_settings(env).db_url == "postgresql+psycopg://x@y/z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("db_url = [1]\n", "must be a string"),
        ("nonsense = 1\n", "unknown setting"),
        ("=", "frazil.toml"),
        ("[server]\nmax_concurrency = 0\n", "server.max_concurrency must be a positive integer"),
        ("[server]\nmax_key_body_bytes = true\n", "server.max_key_body_bytes must be a"),
        ("[database]\nread_timeout = 0\n", "database.read_timeout must be a positive number"),
        ("[database]\nconnect_timeout = inf\n", "database.connect_timeout must be a positive"),
        ("[database]\nstatement_timeout = 50\n", "must be longer than statement_timeout"),
        ("[database]\nquery_timeout = 5\n", "in .database.: query_timeout"),
    ],
)
def test_bad_settings_files(tmp_path, text, message):
    (tmp_path / "frazil.toml").write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings({"FRAZIL_HOME": str(tmp_path)})


def test_home_defaults_to_dot_frazil(monkeypatch, tmp_path):
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    assert load_settings({}).home == tmp_path / ".frazil"


def test_storage_roots_are_absolute_resolved_and_keep_out_of_frazils_home(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    data.mkdir()
    (tmp_path / "link").symlink_to(data)
    toml = home / "frazil.toml"
    toml.write_text(f'[server]\nstorage_roots = ["{tmp_path / "link"}"]\n')
    assert load_settings({"FRAZIL_HOME": str(home)}).server.storage_roots == (data,)
    for roots, message in [
        ('"/data"', "must be a list"),
        ('["data/tmp"]', "not an absolute path"),
        ('["/"]', "whole file system"),
        (f'["{tmp_path}"]', "holds .*home.*never touch"),
    ]:
        toml.write_text(f"[server]\nstorage_roots = {roots}\n")
        with pytest.raises(SettingsError, match=message):
            load_settings({"FRAZIL_HOME": str(home)})
    # a SQLite database outside the home is kept out too
    toml.write_text(f'db_url = "sqlite:///{data}/f.db"\n[server]\nstorage_roots = ["{data}"]\n')
    with pytest.raises(SettingsError, match=r"f\.db"):
        load_settings({"FRAZIL_HOME": str(home)})


def test_server_limits(tmp_path):
    assert load_settings({"FRAZIL_HOME": str(tmp_path)}).server.max_concurrency == 4096
    (tmp_path / "frazil.toml").write_text(
        "[server]\nmax_concurrency = 100\nmax_key_body_bytes = 1024\n"
    )
    server = load_settings({"FRAZIL_HOME": str(tmp_path)}).server
    assert (server.max_concurrency, server.max_key_body_bytes) == (100, 1024)


def test_database_timeouts(tmp_path):
    from frazil.config import DatabaseTimeouts

    assert load_settings({"FRAZIL_HOME": str(tmp_path)}).database == DatabaseTimeouts(10, 30, 45)
    (tmp_path / "frazil.toml").write_text("[database]\nstatement_timeout = 5\nread_timeout = 8.5\n")
    assert load_settings({"FRAZIL_HOME": str(tmp_path)}).database == DatabaseTimeouts(10, 5, 8.5)


def test_the_validation_budget_is_read_from_the_settings_file(tmp_path):
    assert load_settings({"FRAZIL_HOME": str(tmp_path)}).validation.cpu_seconds == 10
    (tmp_path / "frazil.toml").write_text("[validation]\ncpu_seconds = 2.5\nmax_modules = 10\n")
    validation = load_settings({"FRAZIL_HOME": str(tmp_path)}).validation
    assert (validation.cpu_seconds, validation.max_modules, validation.memory_mb) == (2.5, 10, 512)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[validation]\ncpu_seconds = 0\n", "validation.cpu_seconds must be a positive number"),
        ("[validation]\nmax_tasks = 1.5\n", "validation.max_tasks must be a positive integer"),
        ("[validation]\ncpu = 1\n", "unknown setting"),
    ],
)
def test_bad_validation_settings(tmp_path, text, message):
    (tmp_path / "frazil.toml").write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings({"FRAZIL_HOME": str(tmp_path)})


def test_quota_defaults_are_read_from_the_settings_file(tmp_path):
    assert load_settings({"FRAZIL_HOME": str(tmp_path)}).quota.dataset_jobs == 1_000_000
    (tmp_path / "frazil.toml").write_text("[quota]\njobs = 50\n")
    quota = load_settings({"FRAZIL_HOME": str(tmp_path)}).quota
    assert (quota.jobs, quota.tasks) == (50, 10_000_000)
    (tmp_path / "frazil.toml").write_text("[quota]\njobs = -1\n")
    with pytest.raises(SettingsError, match=r"quota\.jobs must be a positive integer"):
        load_settings({"FRAZIL_HOME": str(tmp_path)})


def test_the_access_log_is_off_unless_asked_for(tmp_path):
    assert load_settings({"FRAZIL_HOME": str(tmp_path)}).server.access_log is False
    (tmp_path / "frazil.toml").write_text("[server]\naccess_log = true\n")
    assert load_settings({"FRAZIL_HOME": str(tmp_path)}).server.access_log is True
    (tmp_path / "frazil.toml").write_text('[server]\naccess_log = "yes"\n')
    with pytest.raises(SettingsError, match=r"server.access_log must be true or false, not 'yes'"):
        load_settings({"FRAZIL_HOME": str(tmp_path)})
