"""Running DAGs of batch jobs from the submitting process, for batch systems that cannot hold
a job until others end (``runs_dags`` false: the local plugin, PBS, LSF).

``run_dags`` submits each job once all of its parents completed, asks the plugin for the
status of everything still running every ``poll_interval`` seconds (the caller's choice, as
the site daemon's is its ``[queue] poll_interval``), and never submits a job
whose parent did not complete (it is reported as not run, with the parent named). It returns
when nothing is left to run. If it is interrupted (Ctrl-C) or fails, it cancels the jobs it
started before it lets the exception go.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from frazil.batch.base import ENDED_STATES, BatchPlugin, BatchState, JobRequest


@dataclass(frozen=True)
class Outcome:
    """How one job of the DAGs ended, or why it never ran."""

    batch_id: str | None  # None: never submitted
    state: BatchState | None  # None: not run, because a parent did not complete
    reason: str = ""
    exit_code: int | None = None
    blocked_by: int | None = None  # the parent that did not complete (when not run)

    @property
    def completed(self) -> bool:
        return self.state is BatchState.COMPLETED


def _failed(outcome: Outcome | None) -> bool:
    """Ended without completing, or never run."""
    if outcome is None:
        return False
    return outcome.state is None or (outcome.state in ENDED_STATES and not outcome.completed)


def run_dags(
    plugin: BatchPlugin,
    requests: Sequence[JobRequest],
    parents: Sequence[Sequence[int]],
    *,
    poll_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    report: Callable[[int, Outcome], None] | None = None,
) -> list[Outcome]:
    """Run ``requests`` as DAGs: ``parents[i]`` are the indexes (all below ``i``) of the
    requests that must complete before request ``i`` is submitted. Returns one ``Outcome``
    per request; ``report(i, outcome)`` is called as each is submitted, ends or is skipped."""
    if any(p >= i or p < 0 for i, mine in enumerate(parents) for p in mine):
        raise ValueError("a request's parents must come before it")
    outcomes: dict[int, Outcome] = {}
    running: dict[str, int] = {}

    def settle(i: int, outcome: Outcome) -> None:
        outcomes[i] = outcome
        if report is not None:
            report(i, outcome)

    try:
        while True:
            ready = []
            for i, mine in enumerate(parents):
                if i in outcomes:
                    continue
                failed = [p for p in mine if _failed(outcomes.get(p))]
                if failed:
                    reason = f"{requests[failed[0]].name} did not complete"
                    settle(i, Outcome(None, None, reason, blocked_by=failed[0]))
                elif all(p in outcomes and outcomes[p].completed for p in mine):
                    ready.append(i)
            if ready:
                for i, batch_id in zip(ready, plugin.submit([requests[i] for i in ready]),
                                       strict=True):  # fmt: skip
                    running[batch_id] = i
                    settle(i, Outcome(batch_id, BatchState.PENDING))
            if not running:
                return [outcomes[i] for i in range(len(requests))]
            sleep(poll_interval)
            for batch_id, status in plugin.status(list(running)).items():
                if status.state in ENDED_STATES and batch_id in running:
                    i = running.pop(batch_id)
                    settle(i, Outcome(batch_id, status.state, status.reason, status.exit_code))
    except BaseException:
        if running:
            plugin.cancel(list(running))
        raise
