"""The example's modules are real programs: run one job by hand from its resolved spec."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from frazil.loader import load_config
from frazil.model.resolve import JobInfo, resolve_job
from tests.conftest import EXAMPLE, ROOT


def _path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(parsed.path) if parsed.scheme == "file" else ROOT / url


def test_one_job_runs_to_its_level2_file(tmp_path):
    config = load_config(EXAMPLE)
    system = {
        "storage": f"file://{tmp_path}/storage",
        "scratch_url": f"file://{tmp_path}/scratch",
        "software": str(ROOT / "examples" / "simulation"),
    }
    steering = dict(config.steering.parameters, nevents=200)
    config = config.model_copy(
        update={"steering": config.steering.model_copy(update={"parameters": steering})}
    )
    tasks = resolve_job(config, JobInfo(dataset=7, job=4, jobs_submitted=5, system=system))
    for task in tasks:
        work = tmp_path / "work" / task.name
        work.mkdir(parents=True)
        for d in task.data:
            if d.movement.value in ("input", "both"):
                shutil.copy(_path(d.remote), work / d.local)
        for tray in task.trays:
            for m in tray.modules:
                cmd = [sys.executable, m.src] if m.src.endswith(".py") else [m.src]
                subprocess.run([*cmd, *m.argv], cwd=work, check=True, capture_output=True)
        for d in task.data:
            if d.movement.value in ("output", "both"):
                target = _path(d.remote)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(work / d.local, target)
    final = tmp_path / "storage" / "7" / "000004" / "level2_000004.jsonl"
    events = [json.loads(line) for line in final.read_text().splitlines()]
    assert events, "level 2 kept no events"
    assert {e["detector"] for e in events} <= {"IC86.2016", "IC86.2020"}
    assert all(e["hits"] >= 12 for e in events)
    assert {e["type"] for e in events} <= {"corsika", "nugen"}
