"""The batch jobs of one site: remembered across restarts, polled once a round, cleaned.

The tracker knows nothing of what its jobs run (that is the records' and the modes' part):
it keeps them in a small state file (batch id → record, and the id of a claim not yet fully
submitted), asks the plugin about all of them in one ``status`` call a round, and hands the
ones that ended back to the caller with the outcome their attempts get, since a batch job that
ended is never assumed to have completed its task. It cancels jobs on request and, now and
then, the orphans of the batch system that no record names.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import NamedTuple

from frazil.batch.base import BatchPlugin, BatchState, BatchStatus
from frazil.model.states import AttemptOutcome
from frazil.site.records import Job, ReservedJob, TaskJob, from_json, from_running, to_json

log = logging.getLogger(__name__)

#: The outcome of an attempt whose batch job ended in a state without a report from its
#: pilot (a pilot that exited 0 without reporting failed all the same).
LOST_OUTCOME = {
    BatchState.COMPLETED: AttemptOutcome.FAILED,
    BatchState.FAILED: AttemptOutcome.FAILED,
    BatchState.TIMEOUT: AttemptOutcome.TIMEOUT,
    BatchState.CANCELLED: AttemptOutcome.CANCELLED,
    BatchState.PREEMPTED: AttemptOutcome.CANCELLED,
    BatchState.VANISHED: AttemptOutcome.VANISHED,
}


class Ended(NamedTuple):
    """A batch job that ended, as the batch system last saw it."""

    job: Job
    status: BatchStatus
    outcome: AttemptOutcome


class Tracker:
    """A site's batch jobs by batch id, saved to ``path`` whenever they change."""

    def __init__(self, path: Path, plugin: BatchPlugin) -> None:
        self.path = path
        self.plugin = plugin
        self.jobs: dict[str, Job] = {}
        #: what the batch system said of each job this round (before the ended were handed back)
        self.last: dict[str, BatchStatus] = {}
        #: a claim not yet fully submitted: sent again with the same id, it gets the same tasks
        self.claim_request: str | None = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = json.loads(self.path.read_text())
        if "jobs" in data:
            self.jobs = {k: from_json(v) for k, v in data["jobs"].items()}
        else:  # written by a daemon from before the modes had their own records
            self.jobs = {k: from_running(v) for k, v in data.get("running", {}).items()}
        self.claim_request = data.get("claim_request")
        log.info("%d batch job(s) from before (%s)", len(self.jobs), self.path)

    def save(self) -> None:
        """Write the state file (its directory private to the site, created if need be)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        state = {
            "jobs": {k: to_json(v) for k, v in self.jobs.items()},
            "claim_request": self.claim_request,
        }
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.path)

    def track(self, *jobs: Job) -> None:
        """Remember submitted batch jobs at once: a daemon killed later this round still
        knows them when it restarts."""
        for job in jobs:
            self.jobs[job.batch_id] = job
        self.save()

    def keep(self, job: Job) -> None:
        """Keep an ended job whose end the server has not heard of yet (told next round)."""
        self.jobs[job.batch_id] = job

    def task_ids(self) -> list[int]:
        """The tasks that our batch jobs run or will claim, sorted."""
        return sorted(
            {j.task_id for j in self.jobs.values() if isinstance(j, TaskJob | ReservedJob)}
        )

    def attempts(self) -> dict[tuple[int, int], str]:
        """The batch id of each claimed attempt, by (task, attempt)."""
        return {(j.task_id, j.attempt): b for b, j in self.jobs.items() if isinstance(j, TaskJob)}

    def watch(self) -> list[Ended]:
        """Ask the plugin about every job at once; forget and return the ones that ended."""
        if not self.jobs:
            self.last = {}
            return []
        self.last = self.plugin.status(list(self.jobs))
        ended = []
        for batch_id, status in self.last.items():
            outcome = LOST_OUTCOME.get(status.state)
            if outcome is not None and batch_id in self.jobs:
                ended.append(Ended(self.jobs.pop(batch_id), status, outcome))
        return ended

    def cancel(self, ids: list[str]) -> None:
        """Cancel these batch jobs and forget them, with their directories."""
        self.plugin.cancel(ids)
        for batch_id in ids:
            remove(self.jobs.pop(batch_id))

    def clean(self) -> None:
        """Cancel the jobs of ours that the batch system runs and no record names."""
        orphans = self.plugin.clean_queue(set(self.jobs))
        if orphans:
            log.warning("cancelled %d orphaned batch job(s): %s", len(orphans), orphans)


def remove(job: Job) -> None:
    """Remove a batch job's directory (it holds the pilot's secret and logs)."""
    shutil.rmtree(job.workdir, ignore_errors=True)


def ended_reason(status: BatchStatus) -> str:
    """How a batch job ended, in words."""
    exit_code = "" if status.exit_code is None else f", exit code {status.exit_code}"
    why = f": {status.reason}" if status.reason else ""
    return f"batch job {status.id} ended {status.state.value} ({status.native}{exit_code}){why}"


def stderr_tail(workdir: str, limit: int = 2000) -> str:
    """The end of a pilot's own error output, for the reason a job ended."""
    try:
        text = (Path(workdir) / "pilot.err").read_text(errors="replace").strip()
    except OSError:
        return ""
    return f"; pilot stderr: ...{text[-limit:]}" if text else ""
