"""One round of a site (``SiteDaemon.step``): watch batch jobs, claim, submit pilots.

Each round: tell the server the site is alive (now and then); ask the plugin, in one call,
how every batch job of ours is doing, and report the ones that ended to the server (which
resets their tasks unless the pilot already reported: a batch job that ended is never
assumed to have completed its task); claim up to the free queue slots of tasks that fit a
slot, and submit one pilot per task (at most ``submit_rate`` per round); now and then, cancel
batch jobs of ours that the site no longer knows (orphans).

How claimed work becomes batch jobs is the site's mode, chosen from its config: one pilot per
task (``site/single.py``), whole jobs as batch-side DAGs (``plugin::dag``, ``site/dag.py``) or
multi-task pilots (``pilot = "multi"``, ``site/multi.py``). The batch jobs themselves are the
tracker's (``site/tracker.py``), whichever mode made them.

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

import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from frazil import __version__
from frazil.batch.base import BatchPlugin
from frazil.site.config import SiteConfig
from frazil.site.dag import Dag
from frazil.site.mode import Mode, Round, Server
from frazil.site.multi import Multi
from frazil.site.records import Job, PilotJob, ReservedJob, TaskJob
from frazil.site.single import Single
from frazil.site.tracker import Tracker
from frazil.wire import SiteInfo, slot_fields

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 60.0
CLEAN_EVERY = 300.0

#: The mode that can tell the server about each kind of record.
_OWNER: dict[type[Job], type[Mode]] = {TaskJob: Single, ReservedJob: Dag, PilotJob: Multi}

__all__ = ["CLEAN_EVERY", "HEARTBEAT_EVERY", "Round", "SiteDaemon"]


class SiteDaemon:
    """A site's daemon over a client (HTTP to the server, or a fake) and a batch plugin."""

    def __init__(
        self,
        config: SiteConfig,
        client: Server,
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
        self.tracker = Tracker(self.state_path, plugin)
        kind: type[Mode] = (
            Multi if config.queue.pilot == "multi"
            else Dag if config.queue.plugin.endswith("::dag")
            else Single
        )  # fmt: skip
        self.mode = self._build(kind)
        self._owners: dict[type[Mode], Mode] = {kind: self.mode}
        self._last_heartbeat = -1e18
        self._last_clean = -1e18
        self._last_reconcile = -1e18

    @property
    def running(self) -> dict[str, Job]:
        """Our batch jobs by batch id."""
        return self.tracker.jobs

    @property
    def claim_request(self) -> str | None:
        """The id of a claim not yet fully submitted."""
        return self.tracker.claim_request

    def _build(self, kind: type[Mode]) -> Mode:
        return kind(self.config, self.client, self.plugin, self.tracker, self.pilot)

    def _owner(self, job: Job) -> Mode:
        """The mode that reports ``job``'s end: the site's own, or, for a job submitted
        before its config changed modes, one built for it."""
        if isinstance(self.mode, _OWNER[type(job)]):
            return self.mode
        kind = _OWNER[type(job)]
        if kind not in self._owners:
            log.warning("a %s batch job from before the site changed modes", job.kind)
            self._owners[kind] = self._build(kind)
        return self._owners[kind]

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
        for job, status, outcome in self.tracker.watch():
            done.ended += 1
            if self._owner(job).ended(job, status, outcome, done):
                self.tracker.keep(job)
        self.mode.cancel_stale(done)
        self.mode.submit(now, done)
        if now - self._last_reconcile >= CLEAN_EVERY:
            self.mode.reconcile(done)
            self._last_reconcile = now
        if now - self._last_clean >= CLEAN_EVERY:
            self._last_clean = now
            self.tracker.clean()
        self.tracker.save()
        return done

    def _workdir(self, *parts: str) -> Path:
        """A batch job's directory in the scratch (the scratch itself private: 0700)."""
        return self.mode.workdir(*parts)
