"""Fakes for tests of code that uses Frazil's parts, shipped in the package (as httpx ships
``MockTransport``): each stands at one external boundary, keeps its state in memory, records
what it was asked, and answers what the test scripted.

* ``FakeRunner``: ``frazil.batch.run.run_command``, the one place where batch plugins start
  processes: pass it as a script plugin's ``runner=`` option and the plugin runs no command
  at all. It records every call and answers from scripted replies::

      runner = FakeRunner(["42;cluster\\n"], answers={"squeue": "42|frazil-a\\n"})
      plugin = SlurmPlugin(runner=runner)
      assert plugin.submit([request]) == ["42"]
      assert runner.argvs[0][0] == "sbatch"

* ``FakeClient``: the Frazil server as a site daemon sees it (the calls of
  ``frazil.client.Client`` that ``frazil.site`` makes). It hands out queued ``Claim``s,
  ``JobClaim``s and ``NewPilot``s, and answers ``lost``, ``stale_attempts``, ``unsubmitted``
  and ``demand`` from attributes a test sets.
* ``FakeBatch``: a ``BatchPlugin`` whose jobs live in a dict; a test sets their states
  (``set_state``) and reads what was submitted, cancelled or submitted as a DAG.

Standard library, ``frazil.errors``, ``frazil.wire`` and ``frazil.batch`` only; Frazil's own
runtime modules never import this one.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frazil.batch.base import BatchPlugin, BatchState, BatchStatus, JobRequest
from frazil.batch.run import CommandResult
from frazil.errors import BatchCommandError
from frazil.wire import Claim, JobClaim, NewPilot, SiteInfo, Slot

__all__ = ["Call", "FakeBatch", "FakeClient", "FakeRunner"]


#: What a fake command answers: its stdout (exit status 0), or ``(returncode, stdout,
#: stderr)`` for a command that fails, which raises ``BatchCommandError`` as ``run_command`` does.
Reply = str | tuple[int, str, str]


class FakeRunner:
    """A ``run_command`` that runs nothing: records each call, answers from a script.

    A call is answered by the first entry of ``answers`` whose key starts the command line
    (the argv joined by blanks; it answers every such call), else by the next of ``replies``
    (each answers once, in order), else by ``default``: an empty stdout, or, if ``default``
    is ``None``, a failure that names the unexpected command.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        answers: Mapping[str, Reply] | None = None,
        default: Reply | None = "",
    ) -> None:
        self.replies: list[Reply] = list(replies)
        self.answers: dict[str, Reply] = dict(answers or {})
        self.default = default
        #: every call so far: its argv and its keyword arguments (``timeout``, ``cwd``, ...)
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> CommandResult:
        args = [str(a) for a in argv]
        self.calls.append((args, kwargs))
        return _result(args, self._reply(" ".join(args)))

    def _reply(self, line: str) -> Reply:
        for prefix, reply in self.answers.items():
            if line.startswith(prefix):
                return reply
        if self.replies:
            return self.replies.pop(0)
        if self.default is None:
            return (127, "", f"FakeRunner: no reply for {line!r}")
        return self.default

    @property
    def argvs(self) -> list[list[str]]:
        """The argv of every call so far, in order."""
        return [argv for argv, _ in self.calls]


def _result(argv: list[str], reply: Reply) -> CommandResult:
    if isinstance(reply, tuple):
        returncode, stdout, stderr = reply
        raise BatchCommandError(argv, returncode, stdout, stderr)
    return CommandResult(argv, 0, reply, "", 0.0)


@dataclass(frozen=True)
class Call:
    """One call a fake received: the method's name and its arguments."""

    name: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class FakeClient:
    """A Frazil server in memory, for a site daemon.

    A test queues work (``claims``, ``job_claims``), sets answers (``stale``,
    ``unsubmitted_attempts``, ``waiting``, ``lost_status``, ``pilot_held``), and makes calls
    fail with ``fail(name, exc)``. A claim's answer is kept under its request id: a claim sent
    again with the same id gets the same tasks, as from the real server. Every call is in
    ``calls``; ``calls_to(name)`` picks one method's.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        #: tasks that ``claim`` hands out, oldest first
        self.claims: list[Claim] = []
        #: whole jobs that ``claim_jobs`` hands out, oldest first
        self.job_claims: list[JobClaim] = []
        #: (task, attempt) pairs that ``stale_attempts`` calls stale
        self.stale: set[tuple[int, int]] = set()
        #: (task, attempt) pairs claimed and never submitted (``unsubmitted`` leaves out the
        #: ones whose task the site names as known)
        self.unsubmitted_attempts: list[tuple[int, int]] = []
        #: waiting tasks that fit a pilot (``demand``)
        self.waiting = 0
        #: the task's state that ``lost`` answers (None: the pilot had reported)
        self.lost_status: str | None = "waiting"
        #: how many tasks ``pilot_ended`` says the pilot still held
        self.pilot_held = 0
        self.answered: dict[str, list[Claim]] = {}  # claims by request id
        self._failures: dict[str, list[tuple[BaseException, bool]]] = {}
        self._next_pilot = 1

    def fail(self, name: str, exc: BaseException, *, after: bool = False) -> None:
        """Make the next call of method ``name`` raise ``exc``: before it has any effect, or
        (``after``) once it has had it, as when the answer is lost on its way back."""
        self._failures.setdefault(name, []).append((exc, after))

    def calls_to(self, name: str) -> list[Call]:
        """The calls of one method, in order."""
        return [c for c in self.calls if c.name == name]

    def _call(self, name: str, *args: Any, **kwargs: Any) -> BaseException | None:
        """Record a call; raise a failure due before it, or return one due after it."""
        self.calls.append(Call(name, args, kwargs))
        queued = self._failures.get(name)
        if not queued:
            return None
        exc, after = queued.pop(0)
        if not after:
            raise exc
        return exc

    @staticmethod
    def _answer(late: BaseException | None) -> None:
        if late is not None:
            raise late

    # -- what a site calls ----------------------------------------------------------------------

    def register_site(self, name: str, site: SiteInfo) -> dict[str, Any]:
        self._answer(self._call("register_site", name, site))
        return {"name": name}

    def site_heartbeat(self, name: str) -> None:
        self._answer(self._call("site_heartbeat", name))

    def claim(
        self, site: str, slot: Slot, limit: int, *, request: str | None = None
    ) -> list[Claim]:
        late = self._call("claim", site, slot, limit, request=request)
        if request is not None and request in self.answered:
            claims = self.answered[request]
        else:
            claims, self.claims = self.claims[:limit], self.claims[limit:]
            if request is not None:
                self.answered[request] = claims
        self._answer(late)
        return list(claims)

    def claim_jobs(self, site: str, slot: Slot, limit: int) -> list[JobClaim]:
        late = self._call("claim_jobs", site, slot, limit)
        jobs, self.job_claims = self.job_claims[:limit], self.job_claims[limit:]
        self._answer(late)
        return jobs

    def record_batch_id(self, site: str, task_id: int, attempt: int, batch_id: str) -> None:
        self._answer(self._call("record_batch_id", site, task_id, attempt, batch_id))

    def lost(
        self, site: str, task_id: int, attempt: int, reason: str, outcome: str = "vanished",
        *, counts: bool = True,
    ) -> str | None:  # fmt: skip
        self._answer(self._call("lost", site, task_id, attempt, reason, outcome, counts=counts))
        return self.lost_status

    def stale_attempts(self, site: str, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        self._answer(self._call("stale_attempts", site, list(pairs)))
        return [p for p in pairs if p in self.stale]

    def unsubmitted(self, site: str, known: Sequence[int]) -> list[tuple[int, int]]:
        self._answer(self._call("unsubmitted", site, list(known)))
        return [p for p in self.unsubmitted_attempts if p[0] not in known]

    def create_pilot(self, site: str, slot: Slot) -> NewPilot:
        late = self._call("create_pilot", site, slot)
        pilot = NewPilot(self._next_pilot, f"pilot-key-{self._next_pilot}")
        self._next_pilot += 1
        self._answer(late)
        return pilot

    def record_pilot_batch_id(self, site: str, pilot_id: int, batch_id: str) -> None:
        self._answer(self._call("record_pilot_batch_id", site, pilot_id, batch_id))

    def pilot_ended(
        self, site: str, pilot_id: int, reason: str, outcome: str = "vanished",
        *, counts: bool = True,
    ) -> int:  # fmt: skip
        self._answer(self._call("pilot_ended", site, pilot_id, reason, outcome, counts=counts))
        return self.pilot_held

    def demand(self, site: str, slot: Slot, limit: int) -> int:
        self._answer(self._call("demand", site, slot, limit))
        return min(self.waiting, limit)


class FakeBatch(BatchPlugin):
    """A batch system in memory: submitted jobs are ``PENDING`` until a test moves them.

    ``submitted`` holds every request in order, ``cancelled`` every id asked to end, ``dags``
    each ``submit_dag`` call's requests, parents and ids; ``status_calls`` the ids of each
    ``status`` call. ``fail(exc, after=n)`` makes the submission after the next ``n`` raise.
    """

    name = "fake"
    runs_dags = True
    poll_interval = 0.0

    def __init__(self) -> None:
        self.jobs: dict[str, BatchStatus] = {}
        self.requests: dict[str, JobRequest] = {}
        self.submitted: list[JobRequest] = []
        self.cancelled: list[str] = []
        self.dags: list[tuple[list[JobRequest], list[list[int]], list[str]]] = []
        self.status_calls: list[list[str]] = []
        self._failure: tuple[BaseException, int] | None = None
        self._next = 1

    def fail(self, exc: BaseException, *, after: int = 0) -> None:
        """Let ``after`` more submissions through, then raise ``exc`` at each one."""
        self._failure = (exc, after)

    def set_state(
        self, batch_id: str, state: BatchState, *, exit_code: int | None = None,
        reason: str = "", native: str = "",
    ) -> None:  # fmt: skip
        """Move a job (or, for an id never submitted, plant one: an orphan)."""
        self.jobs[batch_id] = BatchStatus(
            batch_id, state, native or state.value.upper(), exit_code, reason
        )

    def write_script(self, request: JobRequest) -> Path:
        request.workdir.mkdir(parents=True, exist_ok=True)
        script = request.workdir / "job.sh"
        script.write_text(shlex.join(request.argv) + "\n")
        return script

    def submit(self, requests: Sequence[JobRequest]) -> list[str]:
        ids = []
        for request in requests:
            if self._failure is not None:
                exc, after = self._failure
                if after <= 0:
                    raise exc
                self._failure = (exc, after - 1)
            self.write_script(request)
            batch_id = f"fake.{self._next}"
            self._next += 1
            self.submitted.append(request)
            self.requests[batch_id] = request
            self.set_state(batch_id, BatchState.PENDING)
            ids.append(batch_id)
        return ids

    def submit_dag(
        self, requests: Sequence[JobRequest], parents: Sequence[Sequence[int]]
    ) -> list[str]:
        ids = self.submit(requests)
        self.dags.append((list(requests), [list(p) for p in parents], ids))
        return ids

    def status(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        self.status_calls.append(list(ids))
        gone = {i: BatchStatus(i, BatchState.VANISHED, "") for i in ids if i not in self.jobs}
        return {**{i: self.jobs[i] for i in ids if i in self.jobs}, **gone}

    def cancel(self, ids: Sequence[str]) -> None:
        self.cancelled.extend(ids)
        for batch_id in ids:
            if batch_id in self.jobs and self.jobs[batch_id].state in _LIVE:
                self.set_state(batch_id, BatchState.CANCELLED)

    def clean_queue(self, known_ids: Collection[str]) -> list[str]:
        orphans = [b for b, s in self.jobs.items() if s.state in _LIVE and b not in known_ids]
        self.cancel(orphans)
        return orphans


_LIVE = frozenset({BatchState.PENDING, BatchState.RUNNING, BatchState.HELD})
