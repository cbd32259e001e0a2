"""One round of a site (``SiteDaemon.step``): watch batch jobs, claim, submit pilots.

Each round: tell the server the site is alive (now and then); ask the plugin, in one call,
how every batch job of ours is doing, and report the ones that ended to the server (which
resets their tasks unless the pilot already reported: a batch job that ended is never
assumed to have completed its task); claim up to the free queue slots of tasks that fit a
slot, and submit one pilot per task (at most ``submit_rate`` per round); now and then, cancel
batch jobs of ours that the site no longer knows (orphans).

Everything the site knows survives a restart in a small state file (batch id → attempt,
and the id of a claim not yet fully submitted), so a restarted daemon picks up the jobs its
predecessor submitted. A claim is named by a request id, saved before it is sent: a claim
whose answer was lost, or that was not fully submitted when the daemon died, is sent again
with the same id and gets the same tasks, and the ones not submitted yet are submitted. At
its start and now and then, the site also asks the server which of its claimed attempts no
pilot started and it does not know, and hands them back (nothing is left to the queued
timeout).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import stat
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from frazil import __version__
from frazil.batch.base import BatchPlugin, BatchState, BatchStatus, JobRequest
from frazil.client import Client, request_id
from frazil.errors import BatchError, FrazilError, NotFound, Rejected
from frazil.site.config import SiteConfig
from frazil.wire import Claim, SiteInfo, slot_fields

log = logging.getLogger(__name__)

#: Batch states after which the pilot can no longer report.
ENDED = {
    BatchState.COMPLETED: "failed",
    BatchState.FAILED: "failed",
    BatchState.TIMEOUT: "timeout",
    BatchState.CANCELLED: "cancelled",
    BatchState.PREEMPTED: "cancelled",
    BatchState.VANISHED: "vanished",
}
HEARTBEAT_EVERY = 60.0
CLEAN_EVERY = 300.0


@dataclass
class Running:
    """A batch job of ours and the attempt it runs."""

    task_id: int
    attempt: int
    batch_id: str
    workdir: str
    submitted_at: float
    reserved: bool = False  # a batch-side DAG task whose pilot claims it when it starts
    pilot_id: int = 0  # a multi-task pilot (task_id and attempt are 0)


@dataclass
class Round:
    """What one round did."""

    claimed: int = 0
    submitted: int = 0
    ended: int = 0
    reset: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


class SiteDaemon:
    """A site's daemon over a client (HTTP to the server) and a batch plugin."""

    def __init__(
        self,
        config: SiteConfig,
        client: Client,
        plugin: BatchPlugin,
        *,
        pilot: Sequence[str] = (sys.executable, "-m", "frazil.pilot"),
    ) -> None:
        self.config = config
        self.client = client
        self.plugin = plugin
        self.pilot = list(pilot)
        self.scratch = config.storage.scratch
        self.state_path = self.scratch / f"site-{config.name}.json"
        self.running: dict[str, Running] = {}
        # ``plugin::dag``: whole jobs, their DAG held by the batch system
        self.dag = config.queue.plugin.endswith("::dag")
        self.multi = config.queue.pilot == "multi"
        self._pending_pilots = 0  # pilots whose batch jobs have not started yet
        self._last_heartbeat = -1e18
        self._last_clean = -1e18
        self._last_reconcile = -1e18
        self.claim_request: str | None = None  # a claim not yet fully submitted
        self._load()

    # -- state ------------------------------------------------------------------------------

    def _load(self) -> None:
        if self.state_path.exists():
            data = json.loads(self.state_path.read_text())
            self.running = {k: Running(**v) for k, v in data.get("running", {}).items()}
            self.claim_request = data.get("claim_request")
            log.info("site %s: %d batch job(s) from before", self.config.name, len(self.running))

    def _workdir(self, *parts: str) -> Path:
        """A batch job's directory in the scratch (the scratch itself private: 0700)."""
        self.scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.scratch.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _save(self) -> None:
        self.scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        state = {
            "running": {k: asdict(v) for k, v in self.running.items()},
            "claim_request": self.claim_request,
        }
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)

    # -- the round --------------------------------------------------------------------------

    def register(self) -> None:
        """Tell the server who the site is and what its slots offer."""
        info = {"plugin": self.config.queue.plugin, "host": socket.gethostname(),
                "version": __version__}  # fmt: skip
        site = SiteInfo(**slot_fields(self.config.slot()), system=self.config.system, info=info)
        self.client.register_site(self.config.name, site)

    def step(self, now: float) -> Round:
        """One round; returns what it did."""
        done = Round()
        if now - self._last_heartbeat >= HEARTBEAT_EVERY:
            self.client.site_heartbeat(self.config.name)
            self._last_heartbeat = now
        self._watch(done)
        self._cancel_stale(done)
        self._claim_and_submit(now, done)
        if now - self._last_reconcile >= CLEAN_EVERY:
            self._reconcile(done)
            self._last_reconcile = now
        if now - self._last_clean >= CLEAN_EVERY:
            self._last_clean = now
            orphans = self.plugin.clean_queue(set(self.running))
            if orphans:
                log.warning("cancelled %d orphaned batch job(s): %s", len(orphans), orphans)
        self._save()
        return done

    def _watch(self, done: Round) -> None:
        if not self.running:
            return
        statuses = self.plugin.status(list(self.running))
        self._pending_pilots = sum(
            1 for b, st in statuses.items()
            if st.state in (BatchState.PENDING, BatchState.HELD)
            and b in self.running and self.running[b].pilot_id != 0
        )  # fmt: skip
        for batch_id, status in statuses.items():
            outcome = ENDED.get(status.state)
            if outcome is None or batch_id not in self.running:
                continue
            job = self.running.pop(batch_id)
            done.ended += 1
            if job.pilot_id:
                self._pilot_ended(job, status, outcome, done)
                continue
            if job.reserved:
                # its pilot claimed the task (and reported on it) or found it not ready;
                # a pilot that died after claiming is the watchdog's
                shutil.rmtree(job.workdir, ignore_errors=True)
                continue
            reason = _reason(status) + _tail(Path(job.workdir) / "pilot.err")
            try:
                new = self.client.lost(self.config.name, job.task_id, job.attempt, reason, outcome)
            except FrazilError as exc:
                done.errors.append(f"task {job.task_id}: {exc}")
                log.warning("cannot report the end of batch job %s: %s", batch_id, exc)
                if not isinstance(exc, NotFound | Rejected):
                    self.running[batch_id] = job  # the server is away: report it next round
                continue
            if new is not None:
                done.reset += 1
                log.warning(
                    "task %d attempt %d: %s; the task is now %s",
                    job.task_id, job.attempt, _reason(status), new,
                )  # fmt: skip
            shutil.rmtree(job.workdir, ignore_errors=True)

    def _cancel_stale(self, done: Round) -> None:
        """Cancel batch jobs whose attempts ended on the server (suspended, reset, done)."""
        if not self.running:
            return
        by_pair = {
            (j.task_id, j.attempt): b
            for b, j in self.running.items()
            if not j.reserved and not j.pilot_id
        }
        if not by_pair:
            return
        stale = self.client.stale_attempts(self.config.name, list(by_pair))
        ids = [by_pair[pair] for pair in stale if pair in by_pair]
        if not ids:
            return
        self.plugin.cancel(ids)
        for batch_id in ids:
            job = self.running.pop(batch_id)
            shutil.rmtree(job.workdir, ignore_errors=True)
        done.cancelled += len(ids)
        log.info("cancelled %d batch job(s) whose tasks no longer need them", len(ids))

    def _claim_and_submit(self, now: float, done: Round) -> None:
        q = self.config.queue
        free = q.max_queued - len(self.running)
        want = min(free, q.claim_batch, q.submit_rate)
        if self.multi:
            if want > 0:
                self._submit_pilots(now, done, want)
            return
        if self.dag and want > 0:
            want -= self._claim_jobs(now, done, want)
        if want <= 0 and self.claim_request is None:
            return
        if self.claim_request is None:  # saved before it is sent: a repeat gets the same tasks
            self.claim_request = request_id()
            self._save()
        claims = self.client.claim(
            self.config.name, self.config.slot(), max(want, 1), request=self.claim_request
        )
        done.claimed += len(claims)
        submitted = {(j.task_id, j.attempt) for j in self.running.values()}
        claims = [c for c in claims if (c.task_id, c.attempt) not in submitted]
        for k, c in enumerate(claims):
            try:
                batch_id = self._submit(c, now)
            except (BatchError, OSError) as exc:
                # The batch system refused or is away, or the scratch is full or unwritable:
                # hand back this task and the rest of the claim without counting failures,
                # and end the round (it backs off).
                why = f"{exc} (scratch {self.scratch})" if isinstance(exc, OSError) else exc
                log.error("cannot submit task %d: %s", c.task_id, why)
                for back in claims[k:]:
                    self.client.lost(
                        self.config.name, back.task_id, back.attempt,
                        f"not submitted: {why}", "unsubmitted", counts=False,
                    )  # fmt: skip
                self.claim_request = None
                raise
            done.submitted += 1
            try:
                self.client.record_batch_id(self.config.name, c.task_id, c.attempt, batch_id)
            except FrazilError as exc:  # for the record only: submit the rest of the claim
                log.warning("task %d: batch id %s not recorded: %s", c.task_id, batch_id, exc)
        self.claim_request = None

    def _reconcile(self, done: Round) -> None:
        """Hand back the attempts the server says the site claimed and never submitted."""
        known = sorted({j.task_id for j in self.running.values() if j.task_id})
        lost = self.client.unsubmitted(self.config.name, known)
        for task_id, attempt in lost:
            try:
                self.client.lost(
                    self.config.name, task_id, attempt,
                    "claimed but never submitted (the claim's answer was lost, or the site "
                    "stopped before submitting it)", "unsubmitted", counts=False,
                )  # fmt: skip
            except (NotFound, Rejected) as exc:
                log.warning("task %d attempt %d: %s", task_id, attempt, exc)
                continue
            done.reset += 1
        if lost:
            log.warning("handed back %d claimed task(s) that were never submitted", len(lost))

    # -- multi-task pilots ----------------------------------------------------------------------

    def _submit_pilots(self, now: float, done: Round, room: int) -> None:
        """Start pilots while waiting tasks outnumber what the pilots not yet running take."""
        per_pilot = max(1, self.config.resources.cpu)
        waiting = self.client.demand(self.config.name, self.config.slot(), 10_000)
        wanted = -(-waiting // per_pilot) - self._pending_pilots
        for _ in range(min(room, wanted)):
            self._submit_pilot(now)
            self._pending_pilots += 1
            done.submitted += 1

    def _submit_pilot(self, now: float) -> None:
        r = self.config.resources
        new = self.client.create_pilot(self.config.name, self.config.slot())
        pilot_id, key = new.pilot_id, new.key
        workdir = self._workdir("pilots", str(pilot_id))
        secret = _secret(workdir / "key", key)
        argv = [
            *self.pilot,
            "--server", self.config.server,
            "--pilot", str(pilot_id),
            "--key-file", str(secret),
            "--workdir", str(workdir / "tasks"),
            "--cpu", str(r.cpu), "--gpu", str(r.gpu),
            "--memory", str(r.memory), "--disk", str(r.disk), "--walltime", str(r.time),
            "--idle", str(self.config.queue.pilot_idle),
            "--heartbeat", str(self.config.queue.heartbeat),
        ]  # fmt: skip
        if self.config.storage.cache is not None:
            argv += ["--cache", str(self.config.storage.cache)]
        request = JobRequest(
            name=f"frazil-pilot-{pilot_id}", argv=argv, workdir=workdir,
            stdout=workdir / "pilot.out", stderr=workdir / "pilot.err",
            cpu=r.cpu, gpu=r.gpu, memory=r.memory, disk=r.disk, walltime=r.time,
            env={**self.config.environment, "FRAZIL_SITE": self.config.name},
            extra=tuple(self.config.queue.extra),
        )  # fmt: skip
        try:
            (batch_id,) = self.plugin.submit([request])
        except (BatchError, OSError) as exc:
            log.error("cannot submit pilot %d: %s", pilot_id, exc)
            self.client.pilot_ended(
                self.config.name, pilot_id, f"not submitted: {exc}", "unsubmitted", counts=False
            )
            raise
        self._track(Running(0, 0, batch_id, str(workdir), now, pilot_id=pilot_id))
        self.client.record_pilot_batch_id(self.config.name, pilot_id, batch_id)

    def _pilot_ended(self, job: Running, status: BatchStatus, outcome: str, done: Round) -> None:
        """A pilot's batch job ended: tasks it still held are reset (it may have reported)."""
        reason = _reason(status).replace("without a report from its pilot", "") + _tail(
            Path(job.workdir) / "pilot.err"
        )
        try:
            reset = self.client.pilot_ended(
                self.config.name, job.pilot_id, reason.strip(), outcome,
                counts=outcome != "cancelled",
            )  # fmt: skip
        except FrazilError as exc:
            done.errors.append(f"pilot {job.pilot_id}: {exc}")
            log.warning("cannot report the end of pilot %d: %s", job.pilot_id, exc)
            self.running[job.batch_id] = job  # try again next round
            return
        if reset:
            done.reset += reset
            log.warning("pilot %d ended holding %d task(s): %s", job.pilot_id, reset, reason)
        shutil.rmtree(job.workdir, ignore_errors=True)

    def _claim_jobs(self, now: float, done: Round, room: int) -> int:
        """Claim whole jobs and submit each as a DAG of batch jobs; returns tasks submitted."""
        jobs = self.client.claim_jobs(self.config.name, self.config.slot(), max(1, room // 2))
        submitted = 0
        for job in jobs:
            position = {t.task_id: k for k, t in enumerate(job.tasks)}
            try:
                requests = [
                    self._request(t.claim(job.dataset_id, job.job_index), t.reservation)
                    for t in job.tasks
                ]
                parents = [[position[p] for p in t.parents] for t in job.tasks]
                ids = self.plugin.submit_dag(requests, parents)
            except (BatchError, OSError) as exc:
                log.error("cannot submit job %s.%s: %s", job.dataset_id, job.job_index, exc)
                for t in job.tasks:
                    if t.attempt:
                        self.client.lost(
                            self.config.name, t.task_id, t.attempt,
                            f"not submitted: {exc}", "unsubmitted", counts=False,
                        )  # fmt: skip
                raise
            self._track(
                *(
                    Running(t.task_id, t.attempt, b, str(r.workdir), now, not t.attempt)
                    for t, r, b in zip(job.tasks, requests, ids, strict=True)
                )
            )
            for t, batch_id in zip(job.tasks, ids, strict=True):
                if t.attempt:
                    self.client.record_batch_id(self.config.name, t.task_id, t.attempt, batch_id)
            submitted += len(ids)
            done.claimed += len(ids)
            done.submitted += len(ids)
        return submitted

    def _submit(self, claim: Claim, now: float) -> str:
        request = self._request(claim)
        (batch_id,) = self.plugin.submit([request])
        workdir = str(request.workdir)
        self._track(Running(claim.task_id, claim.attempt, batch_id, workdir, now))
        return batch_id

    def _track(self, *jobs: Running) -> None:
        """Remember submitted batch jobs at once: a daemon killed later this round still
        knows them when it restarts."""
        for job in jobs:
            self.running[job.batch_id] = job
        self._save()

    def _request(self, claim: Claim, reservation: str = "") -> JobRequest:
        """The batch job of one claimed task (or of a reserved one, attempt 0, claimed by its
        pilot with ``reservation``): a pilot with its secret in a file."""
        reserved = not claim.attempt
        label = "r" if reserved else str(claim.attempt)
        workdir = self._workdir(
            str(claim.dataset_id), str(claim.job_index), f"{claim.name}-{claim.task_id}-{label}"
        )
        secret = _secret(
            workdir / ("reservation" if reserved else "passkey"),
            reservation if reserved else claim.passkey,
        )
        who = (
            ["--reservation-file", str(secret)] if reserved
            else ["--attempt", str(claim.attempt), "--passkey-file", str(secret)]
        )  # fmt: skip
        argv = [
            *self.pilot,
            "--server", self.config.server,
            "--task", str(claim.task_id),
            *who,
            "--workdir", str(workdir / "task"),
            "--heartbeat", str(self.config.queue.heartbeat),
        ]  # fmt: skip
        if self.config.storage.cache is not None:
            argv += ["--cache", str(self.config.storage.cache)]
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
            env={**self.config.environment, "FRAZIL_SITE": self.config.name},
            extra=tuple(self.config.queue.extra),
        )


def _secret(path: Path, value: str) -> Path:
    """Write a pilot's secret to a new file only its owner can read (never onto a command
    line). The file is always created, never opened: ``O_EXCL|O_NOFOLLOW`` make a link
    planted at its path fail the write instead of carrying the secret elsewhere. A regular
    file left there by an earlier submission of the same task is removed first (removing a
    name never writes through it)."""
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            path.unlink()
    except FileNotFoundError:
        pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise FileExistsError(
            exc.errno, f"refusing to write a secret through what lies at {str(path)!r}"
        ) from exc
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return path


def _tail(path: Path, limit: int = 2000) -> str:
    """The end of a pilot's own error output, for the reason a job ended."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return f"; pilot stderr: ...{text[-limit:]}" if text else ""


def _reason(status: BatchStatus) -> str:
    exit_code = "" if status.exit_code is None else f", exit code {status.exit_code}"
    why = f": {status.reason}" if status.reason else ""
    return (
        f"batch job {status.id} ended {status.state.value} ({status.native}{exit_code}){why} "
        "without a report from its pilot"
    )
