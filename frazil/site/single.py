"""Single-task pilots: one batch job per claimed attempt, its pilot reporting on it.

A claim is named by a request id, saved before it is sent: a claim whose answer was lost, or
that was not fully submitted when the daemon died, is sent again with the same id and gets
the same tasks, and the ones not submitted yet are submitted. A batch job that ended is
reported as lost (the server resets its task unless the pilot reported first), and a batch
job whose attempt ended on the server (suspended, reset, done elsewhere) is cancelled.
"""

from __future__ import annotations

import logging

from frazil.batch.base import BatchStatus, JobRequest
from frazil.client import request_id
from frazil.errors import BatchError, FrazilError, NotFound, Rejected
from frazil.model.states import AttemptOutcome
from frazil.site.mode import Mode, Round, secret
from frazil.site.records import Job, TaskJob
from frazil.site.tracker import ended_reason, remove, stderr_tail
from frazil.wire import Claim

log = logging.getLogger(__name__)

NO_REPORT = " without a report from its pilot"


class Single(Mode):
    """One batch job per claimed task."""

    def submit(self, now: float, done: Round) -> None:
        self.claim_tasks(now, done, self.room())

    def claim_tasks(self, now: float, done: Round, want: int) -> None:
        """Claim up to ``want`` tasks (or repeat an unfinished claim) and submit each."""
        tracker = self.tracker
        if want <= 0 and tracker.claim_request is None:
            return
        if tracker.claim_request is None:  # saved before it is sent: a repeat gets the same tasks
            tracker.claim_request = request_id()
            tracker.save()
        claims = self.client.claim(
            self.site, self.config.slot(), max(want, 1), request=tracker.claim_request
        )
        done.claimed += len(claims)
        submitted = tracker.attempts()
        claims = [c for c in claims if (c.task_id, c.attempt) not in submitted]
        for k, c in enumerate(claims):
            try:
                batch_id = self._submit(c, now)
            except (BatchError, OSError) as exc:
                # The batch system refused or is away, or the scratch is full or unwritable:
                # hand back this task and the rest of the claim without counting failures,
                # and end the round (it backs off).
                scratch = self.config.storage.scratch
                why = f"{exc} (scratch {scratch})" if isinstance(exc, OSError) else exc
                log.error("cannot submit task %d: %s", c.task_id, why)
                for back in claims[k:]:
                    self.client.lost(
                        self.site, back.task_id, back.attempt, f"not submitted: {why}",
                        AttemptOutcome.UNSUBMITTED, counts=False,
                    )  # fmt: skip
                tracker.claim_request = None
                raise
            done.submitted += 1
            try:
                self.client.record_batch_id(self.site, c.task_id, c.attempt, batch_id)
            except FrazilError as exc:  # for the record only: submit the rest of the claim
                log.warning("task %d: batch id %s not recorded: %s", c.task_id, batch_id, exc)
        tracker.claim_request = None

    def _submit(self, claim: Claim, now: float) -> str:
        request = self.request(claim)
        (batch_id,) = self.plugin.submit([request])
        self.tracker.track(
            TaskJob(batch_id, str(request.workdir), now, claim.task_id, claim.attempt)
        )
        return batch_id

    def ended(self, job: Job, status: BatchStatus, outcome: AttemptOutcome, done: Round) -> bool:
        if not isinstance(job, TaskJob):
            raise TypeError(f"a single-task site cannot end {job!r}")
        reason = ended_reason(status) + NO_REPORT + stderr_tail(job.workdir)
        try:
            new = self.client.lost(self.site, job.task_id, job.attempt, reason, outcome)
        except FrazilError as exc:
            done.errors.append(f"task {job.task_id}: {exc}")
            log.warning("cannot report the end of batch job %s: %s", job.batch_id, exc)
            # the server is away: report it next round (it refused: nothing more to say)
            return not isinstance(exc, NotFound | Rejected)
        if new is not None:
            done.reset += 1
            log.warning(
                "task %d attempt %d: %s; the task is now %s",
                job.task_id, job.attempt, ended_reason(status) + NO_REPORT, new,
            )  # fmt: skip
        remove(job)
        return False

    def request(self, claim: Claim, reservation: str = "") -> JobRequest:
        """The batch job of one claimed task (or of a reserved one, attempt 0, claimed by its
        pilot with ``reservation``): a pilot with its secret in a file."""
        reserved = not claim.attempt
        label = "r" if reserved else str(claim.attempt)
        workdir = self.workdir(
            str(claim.dataset_id), str(claim.job_index), f"{claim.name}-{claim.task_id}-{label}"
        )
        key = secret(
            workdir / ("reservation" if reserved else "passkey"),
            reservation if reserved else claim.passkey,
        )
        who = (
            ["--reservation-file", str(key)] if reserved
            else ["--attempt", str(claim.attempt), "--passkey-file", str(key)]
        )  # fmt: skip
        argv = self.pilot_argv(
            "--task", str(claim.task_id), *who, "--workdir", str(workdir / "task")
        )
        return JobRequest(
            name=f"frazil-{claim.task_id}-{label}",
            argv=argv,
            workdir=workdir,
            stdout=workdir / "pilot.out",
            stderr=workdir / "pilot.err",
            cpu=claim.cpu,
            gpu=claim.gpu,
            memory=claim.memory,
            disk=claim.disk,
            walltime=claim.time,
            env=self.env(),
            extra=tuple(self.config.queue.extra),
        )
