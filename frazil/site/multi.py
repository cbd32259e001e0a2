"""Multi-task pilots (``[queue] pilot = "multi"``): batch jobs that run task after task.

The site claims no tasks itself: it asks the server how many waiting tasks fit one of its
pilots and starts pilots while they outnumber what the pilots not yet running (pending or
held in the batch system) would take. Each pilot is created on the server first (its key
written to a file only its owner reads); when its batch job ends, the server resets the tasks
it still held.
"""

from __future__ import annotations

import logging

from frazil.batch.base import BatchState, BatchStatus, JobRequest
from frazil.errors import BatchError, FrazilError
from frazil.model.states import AttemptOutcome
from frazil.site.mode import Mode, Round, secret
from frazil.site.records import Job, PilotJob
from frazil.site.tracker import ended_reason, remove, stderr_tail

log = logging.getLogger(__name__)

#: How many waiting tasks the site asks about at most.
DEMAND_LIMIT = 10_000


class Multi(Mode):
    """Pilots that each take as many tasks as their batch job's slot holds at once."""

    def pending(self) -> int:
        """Pilots whose batch jobs have not started yet (as of this round's poll)."""
        jobs = self.tracker.jobs
        return sum(
            1 for b, st in self.tracker.last.items()
            if st.state in (BatchState.PENDING, BatchState.HELD)
            and isinstance(jobs.get(b), PilotJob)
        )  # fmt: skip

    def submit(self, now: float, done: Round) -> None:
        """Start pilots while waiting tasks outnumber what the pilots not yet running take."""
        room = self.room()
        if room <= 0:
            return
        per_pilot = max(1, self.config.resources.cpu)
        waiting = self.client.demand(self.site, self.config.slot(), DEMAND_LIMIT)
        wanted = -(-waiting // per_pilot) - self.pending()
        for _ in range(min(room, wanted)):
            self._submit_pilot(now)
            done.submitted += 1

    def _submit_pilot(self, now: float) -> None:
        r = self.config.resources
        new = self.client.create_pilot(self.site, self.config.slot())
        workdir = self.workdir("pilots", str(new.pilot_id))
        key = secret(workdir / "key", new.key)
        argv = self.pilot_argv(
            "--pilot", str(new.pilot_id),
            "--key-file", str(key),
            "--workdir", str(workdir / "tasks"),
            "--cpu", str(r.cpu), "--gpu", str(r.gpu),
            "--memory", str(r.memory), "--disk", str(r.disk), "--walltime", str(r.time),
            "--idle", str(self.config.queue.pilot_idle),
        )  # fmt: skip
        request = JobRequest(
            name=f"frazil-pilot-{new.pilot_id}", argv=argv, workdir=workdir,
            stdout=workdir / "pilot.out", stderr=workdir / "pilot.err",
            cpu=r.cpu, gpu=r.gpu, memory=r.memory, disk=r.disk, walltime=r.time,
            env=self.env(), extra=tuple(self.config.queue.extra),
        )  # fmt: skip
        try:
            (batch_id,) = self.plugin.submit([request])
        except (BatchError, OSError) as exc:
            log.error("cannot submit pilot %d: %s", new.pilot_id, exc)
            self.client.pilot_ended(
                self.site, new.pilot_id, f"not submitted: {exc}", AttemptOutcome.UNSUBMITTED,
                counts=False,
            )  # fmt: skip
            raise
        self.tracker.track(PilotJob(batch_id, str(workdir), now, new.pilot_id))
        self.client.record_pilot_batch_id(self.site, new.pilot_id, batch_id)

    def ended(self, job: Job, status: BatchStatus, outcome: AttemptOutcome, done: Round) -> bool:
        """A pilot's batch job ended: tasks it still held are reset (it may have reported)."""
        if not isinstance(job, PilotJob):
            raise TypeError(f"a multi-task pilot site cannot end {job!r}")
        reason = ended_reason(status) + stderr_tail(job.workdir)
        try:
            reset = self.client.pilot_ended(
                self.site, job.pilot_id, reason, outcome,
                counts=outcome is not AttemptOutcome.CANCELLED,
            )  # fmt: skip
        except FrazilError as exc:
            done.errors.append(f"pilot {job.pilot_id}: {exc}")
            log.warning("cannot report the end of pilot %d: %s", job.pilot_id, exc)
            return True  # try again next round
        if reset:
            done.reset += reset
            log.warning("pilot %d ended holding %d task(s): %s", job.pilot_id, reset, reason)
        remove(job)
        return False
