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
    ],
)
def test_bad_settings_files(tmp_path, text, message):
    (tmp_path / "frazil.toml").write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings({"FRAZIL_HOME": str(tmp_path)})


def test_home_defaults_to_dot_frazil(monkeypatch, tmp_path):
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    assert load_settings({}).home == tmp_path / ".frazil"


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
