"""How fast the ``frazil`` command starts: ``--help``, a remote ``status``, a local ``status``.

    python benchmarks/cli_start.py [--runs 10] [--json out.json]

Each command runs ``--runs`` times as a fresh process (after one warm-up run, as hyperfine
does), and the median and the fastest wall time are reported. The remote ``status`` asks a
``frazil server`` process on loopback (SQLite) about a dataset of 3 jobs; the local one
serves the same database in the command's own process. The modules that cost the most to
import for the remote ``status`` (``python -X importtime``) are listed after the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "simulation.yaml"
FRAZIL = [sys.executable, "-m", "frazil"]


def timed(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``argv`` (after a warm-up run)."""
    subprocess.run(argv, env=env, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def heaviest_imports(argv: list[str], env: dict[str, str], n: int = 8) -> list[tuple[str, int]]:
    """The ``n`` top-level imports that took longest (cumulative microseconds)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv[1:]], env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("   "):
            rows.append((parts[2].strip(), int(parts[1])))
    return sorted(rows, key=lambda r: -r[1])[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
        env["FRAZIL_HOME"] = str(home)
        subprocess.run([*FRAZIL, "init"], env=env, check=True, capture_output=True)
        subprocess.run([*FRAZIL, "submit", str(EXAMPLE), "--jobs", "3", "--name", "sim"],
                       env=env, check=True, capture_output=True)  # fmt: skip
        token = subprocess.run([*FRAZIL, "token", "create", "bench", "--role", "user"], env=env,
                               check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
        port = 18800 + os.getpid() % 1000
        server = subprocess.Popen([*FRAZIL, "server", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {token}"})
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            remote = {**env, "FRAZIL_URL": url, "FRAZIL_TOKEN": token}
            cases = {
                "frazil --help": ([*FRAZIL, "--help"], env),
                "frazil status (remote)": ([*FRAZIL, "status", "sim"], remote),
                "frazil status (embedded database)": ([*FRAZIL, "status", "sim"], env),
            }
            results = {name: timed(argv, e, args.runs) for name, (argv, e) in cases.items()}
            imports = heaviest_imports([*FRAZIL, "status", "sim"], remote)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{'command':36} {'median s':>9} {'fastest s':>10}  ({args.runs} runs)")
    for name, times in results.items():
        print(f"{name:36} {statistics.median(times):9.3f} {min(times):10.3f}")
    print("heaviest imports of a remote status (cumulative ms):")
    for module, us in imports:
        print(f"  {module:40} {us / 1000:7.1f}")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": args.runs,
            "median_s": {k: statistics.median(v) for k, v in results.items()},
            "fastest_s": {k: min(v) for k, v in results.items()},
            "imports_ms": {m: us / 1000 for m, us in imports},
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
