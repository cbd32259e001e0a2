"""``frazil run``: scripts and specs without a server; the standalone pilot runs a spec."""

import json
import subprocess
import sys

from tests.conftest import EXAMPLE, ROOT


def test_dry_run_writes_a_script_and_a_spec_per_task(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "frazil", "run", str(EXAMPLE), "--jobs", "2", "--batch", "slurm",
         "--dry-run", "--dir", str(tmp_path), "-s", "storage=file:///data",
         "-o", "partition=short"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scripts = sorted(tmp_path.glob("job-*/*/*.slurm"))
    assert len(scripts) == 12
    photon = tmp_path / "job-000001" / "photon_propagation"
    text = next(photon.glob("*.slurm")).read_text()
    assert "#SBATCH --gres=gpu:1" in text and "#SBATCH --partition=short" in text
    assert "#SBATCH --time=01:00:00" in text and "--spec" in text
    spec = json.loads((photon / "spec.json").read_text())
    assert spec["job"] == 1 and spec["requirements"]["gpu"] == 1
    level2 = json.loads((tmp_path / "job-000001" / "level2" / "spec.json").read_text())
    assert level2["data"][-1]["remote"] == "file:///data/0/000001/level2_000001.jsonl"


def test_the_standalone_pilot_runs_a_spec_and_writes_its_result(tmp_path):
    module = tmp_path / "work.sh"
    module.write_text('echo "$1" > out.txt\necho \'{"lines": 1}\' > frazil_stats.json\n')
    spec = {
        "name": "t", "job": 0, "index": 0, "depends": [], "container": "", "batchsys": {},
        "requirements": {"cpu": 1, "gpu": 0, "memory": 1, "disk": 1, "time": 1},
        "data": [{"remote": str(tmp_path / "store" / "out.txt"), "local": "out.txt",
                  "type": "permanent", "movement": "output", "transfer": True}],
        "trays": [{"name": "tr", "iteration": 0, "env": None, "modules": [{
            "name": "m", "src": str(module), "class_": "", "url": "", "argv": ["hello"],
            "env_shell": "", "env_clear": True, "configs": {}, "parameters": {}}]}],
    }  # fmt: skip
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps(spec))
    result = subprocess.run(
        [sys.executable, "-m", "frazil.pilot", "--spec", str(folder / "spec.json"),
         "--workdir", str(folder / "work")],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "store" / "out.txt").read_text() == "hello\n"
    report = json.loads((folder / "result.json").read_text())
    assert report["status"] == "complete" and report["stats"]["lines"] == 1.0
    assert report["files"][0]["checksum_type"] == "sha256"
    assert "staged out" in (folder / "pilot.log").read_text()
    module.write_text("exit 4\n")
    result = subprocess.run(
        [sys.executable, "-m", "frazil.pilot", "--spec", str(folder / "spec.json"),
         "--workdir", str(folder / "work"), "--fail-exit-code", "100"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 100
    report = json.loads((folder / "result.json").read_text())
    assert report["status"] == "failed" and "exited with code 4" in report["error"]
