"""``frazil run``: scripts and specs without a server; the standalone pilot runs a spec."""

import json
import os
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


def _dag_config(tmp_path, fail_job=None):
    """first -> (second, third) -> last; each step notes its start and end in order.txt."""
    step = tmp_path / "step.sh"
    step.write_text(
        'echo "start $2" >> "$1"\nsleep 0.2\n'
        f'[ "$3" = "{fail_job}" ] && exit 3\necho "end $2" >> "$1"\n'
    )
    order = tmp_path / "order.txt"

    def task(name, depends=(), fails=False):
        args = f"{order} {name}-$args(job)" + (" $args(job)" if fails else "")
        return {"name": name, "depends": list(depends),
                "trays": [{"modules": [{"src": str(step), "args": args}]}]}  # fmt: skip

    config = tmp_path / "dag.json"
    config.write_text(json.dumps({"tasks": [
        task("first"), task("second", ["first"], fails=True), task("third", ["first"]),
        task("last", ["second", "third"]),
    ]}))  # fmt: skip
    return config, order


def _run(config, tmp_path, *extra):
    return subprocess.run(
        [sys.executable, "-m", "frazil", "run", str(config), "--batch", "local",
         "--dir", str(tmp_path / "run"), "--poll-interval", "0.1", *extra],
        cwd=ROOT, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def test_run_on_the_local_plugin_runs_whole_dags(tmp_path):
    config, order = _dag_config(tmp_path)
    result = _run(config, tmp_path, "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 of 8 tasks completed" in result.stdout
    lines = order.read_text().splitlines()
    for job in (0, 1):
        at = {line: i for i, line in enumerate(lines)}
        assert at[f"end first-{job}"] < at[f"start second-{job}"]
        assert at[f"end first-{job}"] < at[f"start third-{job}"]
        assert at[f"end second-{job}"] < at[f"start last-{job}"]
        assert at[f"end third-{job}"] < at[f"start last-{job}"]
        report = json.loads((tmp_path / "run" / f"job-00000{job}" / "last" / "result.json")
                            .read_text())  # fmt: skip
        assert report["status"] == "complete"


def test_a_failed_task_stops_its_descendants_and_the_run_says_so(tmp_path):
    config, order = _dag_config(tmp_path, fail_job=1)
    result = _run(config, tmp_path, "--jobs", "2")
    assert result.returncode == 1
    assert "7 of 8 tasks completed" not in result.stdout
    assert "6 of 8 tasks completed" in result.stdout
    assert "job 1 last: not run: second did not complete" in result.stdout
    lines = order.read_text().splitlines()
    assert "start second-1" in lines and "end second-1" not in lines
    assert "start last-1" not in lines and "end last-0" in lines


def test_a_run_that_cannot_resolve_a_job_submits_nothing(tmp_path):
    config, order = _dag_config(tmp_path)
    data = json.loads(config.read_text())
    data["tasks"][2]["requirements"] = {"memory": "$eval(1 / (2 - $args(job)))"}
    config.write_text(json.dumps(data))
    result = _run(config, tmp_path, "--jobs", "3")  # job 2 divides by zero
    assert result.returncode == 1
    assert "division by zero" in result.stderr and "Traceback" not in result.stderr
    assert not order.exists()
    assert not list((tmp_path / "run").glob("local-batch/*.job.json"))
