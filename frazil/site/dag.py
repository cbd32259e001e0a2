"""Batch-side DAGs (``plugin::dag``): whole jobs submitted at once, held by the batch system.

A job is claimed whole: its roots are claimed attempts (``TaskJob``, as on a single-task site)
and every other task is reserved (``ReservedJob``): its batch job waits for its parents' in the
batch system, and its pilot claims the task with the reservation when it starts. What room is
left after the whole jobs goes to single tasks.
"""

from __future__ import annotations

import logging

from frazil.batch.base import BatchStatus
from frazil.errors import BatchError
from frazil.model.states import AttemptOutcome
from frazil.site.mode import Round
from frazil.site.records import Job, ReservedJob, TaskJob
from frazil.site.single import Single
from frazil.site.tracker import remove

log = logging.getLogger(__name__)


class Dag(Single):
    """Whole jobs as DAGs of batch jobs, then single tasks with the room left."""

    def submit(self, now: float, done: Round) -> None:
        want = self.room()
        if want > 0:
            want -= self._claim_jobs(now, done, want)
        self.claim_tasks(now, done, want)

    def _claim_jobs(self, now: float, done: Round, room: int) -> int:
        """Claim whole jobs and submit each as a DAG of batch jobs; returns tasks submitted."""
        jobs = self.client.claim_jobs(self.site, self.config.slot(), max(1, room // 2))
        submitted = 0
        for job in jobs:
            position = {t.task_id: k for k, t in enumerate(job.tasks)}
            try:
                requests = [
                    self.request(t.claim(job.dataset_id, job.job_index), t.reservation)
                    for t in job.tasks
                ]
                parents = [[position[p] for p in t.parents] for t in job.tasks]
                ids = self.plugin.submit_dag(requests, parents)
            except (BatchError, OSError) as exc:
                log.error("cannot submit job %s.%s: %s", job.dataset_id, job.job_index, exc)
                for t in job.tasks:
                    if t.attempt:
                        self.client.lost(
                            self.site, t.task_id, t.attempt, f"not submitted: {exc}",
                            AttemptOutcome.UNSUBMITTED, counts=False,
                        )  # fmt: skip
                raise
            self.tracker.track(
                *(
                    TaskJob(b, str(r.workdir), now, t.task_id, t.attempt) if t.attempt
                    else ReservedJob(b, str(r.workdir), now, t.task_id)
                    for t, r, b in zip(job.tasks, requests, ids, strict=True)
                )
            )  # fmt: skip
            for t, batch_id in zip(job.tasks, ids, strict=True):
                if t.attempt:
                    self.client.record_batch_id(self.site, t.task_id, t.attempt, batch_id)
            submitted += len(ids)
            done.claimed += len(ids)
            done.submitted += len(ids)
        return submitted

    def ended(self, job: Job, status: BatchStatus, outcome: AttemptOutcome, done: Round) -> bool:
        if isinstance(job, ReservedJob):
            # its pilot claimed the task (and reported on it) or found it not ready;
            # a pilot that died after claiming is the watchdog's
            remove(job)
            return False
        return super().ended(job, status, outcome, done)
