"""The README's first command: ``frazil demo`` runs the simulation chain to the end."""

import subprocess
import sys

from tests.conftest import EXAMPLE, ROOT


def test_demo_runs_every_task_to_completion(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "frazil", "demo", "--jobs", "2", "--dir", str(tmp_path),
         "--config", str(EXAMPLE)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "every task of 2 jobs complete" in result.stdout
    assert result.stdout.count("matches") == 2  # both level-2 files match their checksums
    outputs = sorted(tmp_path.glob("storage/*/*/level2_*.jsonl"))
    assert len(outputs) == 2 and all(p.stat().st_size > 0 for p in outputs)
    assert "gpus_seen" in result.stdout
