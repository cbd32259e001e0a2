"""What the three execution modes of a site share: the round's report, the parts a mode works
with, and the files it writes for its pilots.

A mode (``single``, ``dag``, ``multi``) decides how claimed work becomes batch jobs and what
the server is told when one of its batch jobs ends; the tracker it is given keeps the jobs.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from frazil.batch.base import BatchPlugin, BatchStatus
from frazil.errors import NotFound, Rejected
from frazil.model.states import AttemptOutcome
from frazil.site.config import SiteConfig
from frazil.site.records import Job
from frazil.site.tracker import Tracker
from frazil.wire import Claim, JobClaim, NewPilot, SiteInfo, Slot

log = logging.getLogger(__name__)


class Server(Protocol):
    """What a site asks of the Frazil server (``frazil.client.Client`` over HTTP;
    ``frazil.testing.FakeClient`` in memory)."""

    def register_site(self, name: str, site: SiteInfo) -> object: ...  # the site reads none
    def site_heartbeat(self, name: str) -> None: ...
    def claim(
        self, site: str, slot: Slot, limit: int, *, request: str | None = None
    ) -> list[Claim]: ...
    def claim_jobs(self, site: str, slot: Slot, limit: int) -> list[JobClaim]: ...
    def record_batch_id(self, site: str, task_id: int, attempt: int, batch_id: str) -> None: ...
    def lost(
        self, site: str, task_id: int, attempt: int, reason: str, outcome: str = "vanished",
        *, counts: bool = True,
    ) -> str | None: ...  # fmt: skip
    def stale_attempts(
        self, site: str, pairs: Sequence[tuple[int, int]]
    ) -> list[tuple[int, int]]: ...
    def unsubmitted(self, site: str, known: Sequence[int]) -> list[tuple[int, int]]: ...
    def create_pilot(self, site: str, slot: Slot) -> NewPilot: ...
    def record_pilot_batch_id(self, site: str, pilot_id: int, batch_id: str) -> None: ...
    def pilot_ended(
        self, site: str, pilot_id: int, reason: str, outcome: str = "vanished",
        *, counts: bool = True,
    ) -> int: ...  # fmt: skip
    def demand(self, site: str, slot: Slot, limit: int) -> int: ...


@dataclass
class Round:
    """What one round did."""

    claimed: int = 0
    submitted: int = 0
    ended: int = 0
    reset: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


class Mode:
    """How a site runs tasks: it claims and submits, and reports the ends of its batch jobs.

    A subclass implements ``submit`` and ``ended`` for the records it makes; cancelling the
    batch jobs of stale attempts and handing back claims never submitted are the same for
    every mode. Submission failures (``BatchError``, ``OSError``)
    hand the claimed work back uncounted and are raised, so the daemon's loop backs off.
    """

    def __init__(
        self, config: SiteConfig, client: Server, plugin: BatchPlugin, tracker: Tracker,
        pilot: Sequence[str],
    ) -> None:  # fmt: skip
        self.config = config
        self.client = client
        self.plugin = plugin
        self.tracker = tracker
        self.pilot = list(pilot)
        self.site = config.name

    def room(self) -> int:
        """How many batch jobs this round may add: free queue slots, claim and submit caps."""
        q = self.config.queue
        return min(q.max_queued - len(self.tracker.jobs), q.claim_batch, q.submit_rate)

    def submit(self, now: float, done: Round) -> None:
        """Claim work from the server and submit batch jobs for it."""
        raise NotImplementedError

    def ended(self, job: Job, status: BatchStatus, outcome: AttemptOutcome, done: Round) -> bool:
        """Tell the server that ``job`` ended; true to keep it (the server was away)."""
        raise NotImplementedError

    def cancel_stale(self, done: Round) -> None:
        """Cancel batch jobs whose attempts ended on the server (suspended, reset, done),
        whichever mode submitted them."""
        by_pair = self.tracker.attempts()
        if not by_pair:
            return
        stale = self.client.stale_attempts(self.site, list(by_pair))
        ids = [by_pair[pair] for pair in stale if pair in by_pair]
        if not ids:
            return
        self.tracker.cancel(ids)
        done.cancelled += len(ids)
        log.debug("cancelled batch job(s) whose tasks no longer need them: %s", ids)

    def reconcile(self, done: Round) -> None:
        """Hand back the attempts the server says the site claimed and never submitted."""
        lost = self.client.unsubmitted(self.site, self.tracker.task_ids())
        for task_id, attempt in lost:
            try:
                self.client.lost(
                    self.site, task_id, attempt,
                    "claimed but never submitted (the claim's answer was lost, or the site "
                    "stopped before submitting it)", AttemptOutcome.UNSUBMITTED, counts=False,
                )  # fmt: skip
            except (NotFound, Rejected) as exc:
                log.warning("task %d attempt %d: %s", task_id, attempt, exc)
                continue
            done.reset += 1
        if lost:
            log.warning("handed back %d claimed task(s) that were never submitted", len(lost))

    def workdir(self, *parts: str) -> Path:
        """A batch job's directory in the scratch."""
        return workdir(self.config.storage.scratch, *parts)

    def pilot_argv(self, *args: str) -> list[str]:
        """The pilot's command line: the server, ``args``, the heartbeat and the cache."""
        argv = [*self.pilot, "--server", self.config.server, *args,
                "--heartbeat", str(self.config.queue.heartbeat)]  # fmt: skip
        if self.config.storage.cache is not None:
            argv += ["--cache", str(self.config.storage.cache)]
        return argv

    def env(self) -> dict[str, str]:
        """What every pilot's environment gets."""
        return {**self.config.environment, "FRAZIL_SITE": self.site}


def workdir(scratch: Path, *parts: str) -> Path:
    """A directory in the scratch (the scratch itself private: 0700)."""
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = scratch.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def secret(path: Path, value: str) -> Path:
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
