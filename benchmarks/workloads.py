"""The workloads of the side-by-side benchmark, defined once for every system.

Every workload is ``jobs`` independent chains of ``length`` no-op tasks:

- ``indep:N`` — N independent tasks (N chains of one task);
- ``dag:JxT`` — J jobs, each a chain of T tasks (the shape of a production job);
- ``chain:N`` — N strictly sequential tasks (one chain: the latency of one dependency hop).

Task ``(job, step)`` is :func:`noop` called with its predecessor's result (``None`` for the
first step): it checks that the predecessor is ``(job, step - 1)``, appends ``"job step"`` to a
log file and returns ``(job, step)``. :func:`check` then proves from the results and the log
that every task ran exactly once and that each chain ran in order.

Standard library only: the runners' workers (and the Prefect venv) import this module.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tasklog import record

Kind = Literal["indep", "dag", "chain"]
Token = tuple[int, int]
DEFAULTS = ("indep:2000", "dag:200x5", "chain:1000")


@dataclass(frozen=True)
class Workload:
    """``jobs`` independent chains of ``length`` tasks each."""

    kind: Kind
    jobs: int
    length: int

    @property
    def name(self) -> str:
        if self.kind == "dag":
            return f"dag:{self.jobs}x{self.length}"
        return f"{self.kind}:{self.tasks}"

    @property
    def tasks(self) -> int:
        return self.jobs * self.length

    @property
    def depth(self) -> int:
        """Tasks on the longest chain: the steps that ``ms_per_step`` divides by."""
        return self.length


def parse(text: str) -> Workload:
    """``indep:2000``, ``dag:200x5`` or ``chain:1000``; ValueError otherwise."""
    if m := re.fullmatch(r"(indep|chain):([1-9]\d*)", text):
        n = int(m[2])
        return Workload("indep", n, 1) if m[1] == "indep" else Workload("chain", 1, n)
    if m := re.fullmatch(r"dag:([1-9]\d*)x([1-9]\d*)", text):
        return Workload("dag", int(m[1]), int(m[2]))
    raise ValueError(f"workload {text!r}: expected indep:N, dag:JxT or chain:N")


def noop(job: int, step: int, prev: Token | None, log: str) -> Token:
    """One task. ``log`` empty: a warm-up task that records nothing."""
    expected = None if step == 0 else (job, step - 1)
    got = None if prev is None else (prev[0], prev[1])  # some systems turn tuples into lists
    if got != expected:
        raise RuntimeError(f"task {job}.{step} got {prev!r} from its predecessor")
    if log:
        record(log, job, step)
    return (job, step)


def check(w: Workload, results: list[Token], log: Path) -> None:
    """Raise ValueError unless every task returned, ran exactly once, and chains ran in order."""
    want = {(j, s) for j in range(w.jobs) for s in range(w.length)}
    got = {(int(r[0]), int(r[1])) for r in results}
    if got != want or len(results) != w.tasks:
        raise ValueError(f"{len(results)} results, {len(want - got)} tasks missing")
    lines = log.read_text().split("\n")[:-1] if log.exists() else []
    runs = [(int(j), int(s)) for j, s in (line.split() for line in lines)]
    twice = [t for t, n in Counter(runs).items() if n > 1]
    if twice or len(runs) != w.tasks:
        raise ValueError(f"{len(runs)} task runs logged for {w.tasks} tasks; twice: {twice[:5]}")
    last = [-1] * w.jobs
    for job, step in runs:
        if step != last[job] + 1:
            raise ValueError(f"task {job}.{step} ran after {job}.{last[job]}")
        last[job] = step
