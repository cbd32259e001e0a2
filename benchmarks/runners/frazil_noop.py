"""The no-op task of the benchmark as a Frazil module class (run in a worker of the pilot's
module host).

It appends ``"job step"`` to the log (:func:`tasklog.record`, as the other systems' tasks do),
so that :func:`workloads.check` proves every task ran once and every chain in order.
"""

from __future__ import annotations

from typing import ClassVar

from tasklog import record

from frazil.pilot.modules.base import Module, Param


class Noop(Module):
    """Record that task ``(job, step)`` ran."""

    parameters: ClassVar[dict[str, Param]] = {
        "job": Param(0, "the job's index"),
        "step": Param(0, "the task's place in its chain"),
        "log": Param("", "the file to append to (empty: record nothing)"),
    }

    def run(self, stats: dict[str, float]) -> None:
        log = str(self.params["log"])
        if log:
            record(log, int(str(self.params["job"])), int(str(self.params["step"])))
