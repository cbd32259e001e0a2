"""The sample ``site.toml``: shipped in the package, the same as examples/site.toml, read by
the site's own loader, showing every key, and printed by ``frazil site --example-config``."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from frazil.site.config import Queue, SiteConfig, Storage, example_config, load_site_config
from frazil.wire import Slot
from tests.conftest import EXAMPLE, ROOT

SAMPLE = ROOT / "examples" / "site.toml"


def test_the_packaged_example_is_examples_site_toml():
    assert example_config() == SAMPLE.read_text(encoding="utf-8")
    assert (ROOT / "frazil" / "site" / "example.toml").read_bytes() == SAMPLE.read_bytes()


def test_the_example_parses_with_the_sites_loader():
    config = load_site_config(SAMPLE)
    assert config.name == "local" and config.server == "http://127.0.0.1:8800"
    assert config.queue.plugin == "local" and config.slot().attributes == {"cvmfs": False}
    assert config.storage.scratch == Path("~/.frazil/scratch").expanduser()


def _keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


@pytest.mark.parametrize(
    ("section", "keys"),
    [
        ("", [k for k in _keys(SiteConfig) if k not in ("queue", "resources", "storage")]),
        ("queue", _keys(Queue)),
        ("resources", [f.name for f in dataclasses.fields(Slot) if f.name != "attributes"]),
        ("storage", _keys(Storage)),
    ],
)
def test_the_example_shows_every_key_with_a_comment(section, keys):
    parts = re.split(r"^\[(\w+)\]$", example_config(), flags=re.MULTILINE)
    sections = {"": parts[0], **dict(zip(parts[1::2], parts[2::2], strict=True))}
    text = sections[section]
    for key in keys:
        if key in ("attributes", "system", "environment"):  # tables of their own
            assert sections[key].startswith("\n# "), key
            continue
        written = re.search(rf"^(# )?{key} = .*$", text, re.MULTILINE)
        assert written is not None, f"{section or 'top'}.{key} is not in the example"
        before = text[: written.start()].rstrip("\n").rsplit("\n", 1)[-1]
        assert before.startswith("#") or "#" in written.group(), f"{key} has no comment"


def test_the_example_gives_the_system_values_the_example_dataset_needs():
    needed = set(re.findall(r"\$system\((\w+)\)", EXAMPLE.read_text()))
    assert needed == {"software", "gcd_dir", "storage", "scratch_url"}
    assert set(load_site_config(SAMPLE).system) == needed


def _frazil(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
    return subprocess.run([sys.executable, "-m", "frazil", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)  # fmt: skip


def test_frazil_site_prints_the_example_config(tmp_path):
    result = _frazil("site", "--example-config")
    assert (result.returncode, result.stdout) == (0, SAMPLE.read_text(encoding="utf-8"))
    printed = tmp_path / "site.toml"
    printed.write_text(result.stdout)
    assert load_site_config(printed) == load_site_config(SAMPLE)
    result = _frazil("site")  # neither: the usage error names what is missing
    assert result.returncode == 2
    assert "Invalid value for '--config': is needed (or --example-config)" in result.stderr


def test_the_readmes_site_toml_reads(tmp_path):
    readme = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", readme, flags=re.DOTALL)
    (tmp_path / "site.toml").write_text(block)
    config = load_site_config(tmp_path / "site.toml")
    needed = set(re.findall(r"\$system\((\w+)\)", EXAMPLE.read_text()))
    assert set(config.system) == needed and config.queue.plugin == "slurm"
