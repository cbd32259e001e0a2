"""Frazil side by side with its peers, on the same workloads, on this machine, in one run.

    python benchmarks/compare.py [--workloads indep:2000 dag:200x5 chain:1000]
                                 [--peers parsl dask | all | none] [--frazil sqlite postgres]
                                 [--repeat 3] [--timeout 300] [--json out.json]

Every (system, workload) runs ``--repeat`` times, each in a fresh process
(``benchmarks/runners/<name>.py --workload W``, see ``runners/common.py`` for its contract)
with a timeout; repeats go round-robin over the systems so that other work on the machine
weighs on all of them alike. One table shows the medians and, for each Frazil backend, its
ratio to every peer: of tasks/s for ``indep`` and ``dag`` (above 1: Frazil is faster), of
ms per chain step for ``chain`` (above 1: Frazil is slower). A system that is missing, fails
or times out shows "—" and its reason; the JSON (default ``benchmarks/results/``) keeps the
machine's description, every run's raw figures and the medians.

Peers: ``parsl`` (HighThroughputExecutor, 2 workers), ``parsl-threads`` (2 threads), ``dask``
(LocalCluster, 2 workers) come with ``pip install -e .[bench]``; ``prefect`` (local server,
2 threads) runs in its own venv, ``.bench/prefect-venv``, created here when asked for
(``--peers prefect`` or ``all``) since Prefect's server breaks with Frazil's FastAPI.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from runners.common import FAILED
from workloads import DEFAULTS, parse

HERE = Path(__file__).resolve().parent
RUNNERS = HERE / "runners"
FRAZIL_RUNNER = RUNNERS / "frazil_run.py"
PREFECT_VENV = HERE.parent / ".bench" / "prefect-venv"
PREFECT_REQUIREMENTS = ["prefect>=3", "fastapi<0.150"]
PEERS = {  # name: (runner, module it needs in this interpreter)
    "parsl": ("parsl_htex.py", "parsl"),
    "parsl-threads": ("parsl_threads.py", "parsl"),
    "dask": ("dask_distributed.py", "distributed"),
    "prefect": ("prefect_run.py", ""),
}
FIGURES = ("startup_s", "wall_s", "tasks_per_s", "ms_per_step")
err = Console(stderr=True)


@dataclass(frozen=True)
class System:
    """A row group of the table: how to run it, or why it cannot run."""

    name: str
    command: list[str]  # without --workload
    unavailable: str = ""

    @property
    def frazil(self) -> bool:
        return self.name.startswith("frazil")


def prefect_python() -> tuple[Path | None, str]:
    """The Prefect venv's interpreter, creating the venv first if needed; or why there is none."""
    python = PREFECT_VENV / "bin" / "python"
    probe = [str(python), "-c", "import prefect.server.api.server"]

    def works() -> bool:
        return (
            python.exists()
            and not subprocess.run(probe, check=False, capture_output=True).returncode
        )

    if works():
        return python, ""
    err.print(f"creating {PREFECT_VENV} with {' '.join(PREFECT_REQUIREMENTS)} (a minute or two)")
    log = PREFECT_VENV.parent / "prefect-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        for cmd in (
            [sys.executable, "-m", "venv", "--clear", str(PREFECT_VENV)],
            [str(python), "-m", "pip", "install", "-q", *PREFECT_REQUIREMENTS],
        ):
            try:
                done = subprocess.run(
                    cmd, check=False, stdout=out, stderr=subprocess.STDOUT, timeout=900
                )
            except subprocess.TimeoutExpired:
                return None, f"timed out: {' '.join(cmd[-3:])} (see {log})"
            if done.returncode != 0:
                return None, f"{' '.join(cmd[-3:])} failed: {tail(log.read_text())} (see {log})"
    if not works():
        failed = subprocess.run(probe, check=False, capture_output=True, text=True)
        return None, f"prefect's server does not import: {tail(failed.stderr)}"
    return python, ""


def systems(peers: list[str], backends: list[str]) -> list[System]:
    out = []
    frazil = FRAZIL_RUNNER
    for backend in backends:
        missing = "" if frazil.exists() else f"{frazil.relative_to(HERE.parent)} does not exist yet"
        out.append(
            System(
                f"frazil-{backend}", [sys.executable, str(frazil), "--backend", backend], missing
            )
        )
    for peer in peers:
        script, module = PEERS[peer]
        command = [sys.executable, str(RUNNERS / script)]
        missing = ""
        if peer == "prefect":
            python, missing = prefect_python()
            command[0] = str(python)
        elif importlib.util.find_spec(module) is None:
            missing = f"{module} is not installed here: pip install -e '.[bench]'"
        out.append(System(peer, command, missing))
    return out


def tail(text: str, width: int = 160) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:width] if lines else ""


def run_once(system: System, workload: str, timeout: float) -> dict[str, Any]:
    """One run in a fresh process (and process group, killed afterwards with what it left)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as errs:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [*system.command, "--workload", workload],
            stdout=out,
            stderr=errs,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        elapsed = time.perf_counter() - t0
        out.seek(0)
        errs.seek(0)
        stdout, stderr = out.read(), errs.read()
    base = {"system": system.name, "workload": workload, "elapsed_s": elapsed}
    if code is None:
        return base | {"ok": False, "reason": f"timed out after {timeout:.0f} s"}
    if code != 0:
        said = [line for line in stderr.splitlines() if line.startswith(FAILED)]
        why = said[-1].removeprefix(FAILED)[:200] if said else tail(stderr)
        return base | {"ok": False, "reason": f"exit {code}: {why}"}
    try:
        figures: dict[str, Any] = json.loads(tail(stdout, width=10_000))
        missing = [k for k in ("wall_s", "tasks_per_s") if type(figures[k]) not in (int, float)]
    except (ValueError, KeyError, TypeError) as exc:
        return base | {"ok": False, "reason": f"no JSON line on stdout ({exc})"}
    if missing:
        return base | {"ok": False, "reason": f"no figures for {missing}"}
    return figures | {"runner_system": figures.get("system")} | base | {"ok": True, "reason": None}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r["ok"]]
    out: dict[str, Any] = {"runs": len(runs), "ok": len(ok)}
    if not ok:
        out["reason"] = runs[-1]["reason"] if runs else "not run"
        return out
    for key in FIGURES:
        values = [r[key] for r in ok if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    return out | {"config": ok[-1].get("config", ""), "version": ok[-1].get("version", "")}


def ratio(workload: str, frazil: dict[str, Any], peer: dict[str, Any]) -> float | None:
    """Frazil ÷ peer: of tasks/s (indep, dag), of ms per step (chain)."""
    key = "ms_per_step" if workload.startswith("chain") else "tasks_per_s"
    f, p = frazil.get(key), peer.get(key)
    return f / p if f and p else None


def table(workloads: list[str], found: list[System], summary: dict[str, dict[str, Any]]) -> Table:
    def fmt(value: float | None, digits: int) -> str:
        return "—" if value is None else f"{value:,.{digits}f}"

    def times(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}×"

    frazils = [s for s in found if s.frazil]
    t = Table(
        title="Frazil and its peers (medians)",
        caption="Frazil ÷ peer: of tasks/s for indep and dag (>1: Frazil faster), "
        "of ms/step for chain (>1: Frazil slower)",
    )
    t.add_column("workload")
    t.add_column("system")
    t.add_column("config, or why not", max_width=44, overflow="fold")
    t.add_column("ok")
    for name in ("start-up s", "wall s", "tasks/s", "ms/step"):
        t.add_column(name, justify="right")
    for s in frazils:
        t.add_column(f"{s.name.removeprefix('frazil-')} ÷", justify="right")
    for w in workloads:
        for s in found:
            m = summary[f"{s.name} {w}"]
            ok = f"{m['ok']}/{m['runs']}"
            if not m["ok"]:
                why = Text(s.unavailable or m.get("reason", ""), style="red")
                t.add_row(w, s.name, why, ok, *["—"] * (4 + len(frazils)))
                continue
            cells = [
                fmt(m["startup_s"], 1),
                fmt(m["wall_s"], 2),
                fmt(m["tasks_per_s"], 0),
                fmt(m["ms_per_step"], 2),
            ]
            ratios = [
                "" if s.frazil else times(ratio(w, summary[f"{f.name} {w}"], m)) for f in frazils
            ]
            t.add_row(w, s.name, Text(str(m["config"])), ok, *cells, *ratios)
        t.add_section()
    return t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workloads", nargs="+", default=list(DEFAULTS))
    p.add_argument("--peers", nargs="+", default=["parsl", "dask"], choices=[*PEERS, "all", "none"])
    p.add_argument(
        "--frazil",
        nargs="*",
        default=["sqlite"],
        choices=["sqlite", "postgres"],
        help="Frazil backends (none: --frazil alone)",
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    try:
        workloads = [parse(w).name for w in a.workloads]
    except ValueError as exc:
        p.error(str(exc))
    peers = list(PEERS) if "all" in a.peers else [x for x in a.peers if x != "none"]
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_before = os.getloadavg()
    found = systems(list(dict.fromkeys(peers)), list(dict.fromkeys(a.frazil)))

    runs: list[dict[str, Any]] = []
    for i in range(a.repeat):
        for w in workloads:
            for s in found:
                if s.unavailable:
                    continue
                r = run_once(s, w, a.timeout) | {"repeat": i + 1}
                runs.append(r)
                said = f"{r['wall_s']:.2f} s" if r["ok"] else f"[red]{r['reason']}[/red]"
                err.print(f"{s.name} {w} run {i + 1}/{a.repeat}: {said}")
    summary = {}
    for w in workloads:
        for s in found:
            mine = [r for r in runs if r["system"] == s.name and r["workload"] == w]
            m = medians(mine) | {"system": s.name, "workload": w}
            summary[f"{s.name} {w}"] = m | ({"reason": s.unavailable} if s.unavailable else {})
    console = Console()
    if not console.is_terminal:  # a file or a pipe: no need to squeeze the table into 80 columns
        console = Console(width=160)
    console.print(table(workloads, found, summary))

    out = a.json or HERE / "results" / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpu_count": os.cpu_count(),
        "python": sys.version,
        "platform": platform.platform(),
        "date": started,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    report = {
        "machine": machine,
        "args": {k: str(v) for k, v in vars(a).items()},
        "runs": runs,
        "medians": list(summary.values()),
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
