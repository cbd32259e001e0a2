"""The batch-system plugin contract: one state enum, two records, the interface, the registry.

Every scheduler Frazil can drive is one ``BatchPlugin`` subclass registered under the
entry-point group ``frazil.batch``: the embedded ``local`` runner (``local.py``) directly,
and Slurm, Grid Engine, PBS/Torque, LSF and HTCondor through their shared base for
script-based schedulers, ``ScriptPlugin`` (``script.py``). The site daemon sees only this
module: it builds ``JobRequest``s, submits them, asks for the ``status`` of all of its ids at
once (as often as its ``[queue] poll_interval`` says), and reads back ``BatchStatus`` records
whose ``state`` is a ``BatchState`` no matter which scheduler produced it.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from frazil.errors import BatchError

log = logging.getLogger(__name__)

#: The entry-point group that plugins register under (``local = "frazil.batch.local:..."``).
ENTRY_POINT_GROUP = "frazil.batch"

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _DocEnum(StrEnum):
    """A string enum whose members each carry a docstring: ``NAME = "value", "what it means"``."""

    def __new__(cls, value: str, doc: str = "") -> _DocEnum:
        member = str.__new__(cls, value)
        member._value_ = value
        member.__doc__ = doc
        return member


class BatchState(_DocEnum):
    """Where a batch job is, in words shared by every plugin."""

    PENDING = "pending", "Accepted and waiting for resources or its turn; nothing runs yet."
    RUNNING = "running", "The job's command runs."
    COMPLETED = "completed", "The command ended with exit status 0."
    FAILED = "failed", "The command ended non-zero or was killed by a signal; see ``exit_code``."
    CANCELLED = "cancelled", "Cancelled (by us, or by an administrator) before it ended by itself."
    TIMEOUT = (
        "timeout",
        "Killed for exceeding its walltime. Not a failure of the command: retry with more time.",
    )
    PREEMPTED = "preempted", "Evicted by the scheduler to make room for other work; it ended."
    HELD = "held", "Held by the scheduler or an administrator; it will not start until released."
    VANISHED = (
        "vanished",
        "The batch system no longer knows the id. Never assume such a job completed.",
    )
    UNKNOWN = "unknown", "A native state with no mapping; a warning names each such code once."


#: States after which the job will never run again.
ENDED_STATES = frozenset(
    {
        BatchState.COMPLETED,
        BatchState.FAILED,
        BatchState.CANCELLED,
        BatchState.TIMEOUT,
        BatchState.PREEMPTED,
        BatchState.VANISHED,
    }
)

_warned_codes: set[tuple[str, str]] = set()


def native_state(system: str, table: Mapping[str, BatchState], code: str) -> BatchState:
    """Map a scheduler's own state code through ``table``; unmapped codes are ``UNKNOWN``.

    Each unmapped code is logged once per process and system, so a new scheduler release shows
    up in the log without flooding it at every poll.
    """
    state = table.get(code)
    if state is not None:
        return state
    if (system, code) not in _warned_codes:
        _warned_codes.add((system, code))
        log.warning("%s: unknown native job state %r, reported as UNKNOWN", system, code)
    return BatchState.UNKNOWN


@dataclass(frozen=True)
class BatchStatus:
    """One job as the batch system sees it right now."""

    id: str
    state: BatchState
    native: str  # the scheduler's own code, e.g. Slurm's "NODE_FAIL", for the log and the UI
    exit_code: int | None = None  # a signal death N is reported as 128 + N, as a shell does
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """One batch job to submit: what to run (usually the pilot), where, and with what.

    ``memory`` and ``disk`` are in GB (2**30 bytes, as schedulers count), ``walltime`` in
    hours. ``env`` is added to the job's environment. ``extra`` holds site lines that a plugin
    renders verbatim into its submit script (``#SBATCH --account=x``; for ``local``, shell lines).
    Invalid values raise ``BatchError``.
    """

    name: str
    argv: Sequence[str]
    workdir: Path
    stdout: Path
    stderr: Path
    cpu: int = 1
    gpu: int = 0
    memory: float = 1.0
    disk: float = 1.0
    walltime: float = 1.0
    env: Mapping[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    #: batch ids of jobs that must end successfully before this one may start (batch-side
    #: DAGs and unmonitored runs); plugins without dependencies refuse a non-empty ``after``
    after: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Freeze the mutable inputs so a request cannot change after it was validated.
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "extra", tuple(self.extra))
        object.__setattr__(self, "after", tuple(self.after))
        for attr in ("workdir", "stdout", "stderr"):
            object.__setattr__(self, attr, Path(getattr(self, attr)))
        problems = []
        if not _SAFE_NAME.fullmatch(self.name):
            problems.append(f"name {self.name!r} is not 1-128 of [A-Za-z0-9_.-]")
        if not self.argv or not self.argv[0]:
            problems.append("argv is empty")
        if self.cpu < 1 or self.gpu < 0:
            problems.append(f"cpu={self.cpu} gpu={self.gpu}: need cpu >= 1 and gpu >= 0")
        if not (self.memory > 0 and self.disk >= 0 and self.walltime > 0):
            problems.append(
                f"memory={self.memory} disk={self.disk} walltime={self.walltime}: "
                "need memory > 0, disk >= 0, walltime > 0"
            )
        problems += [
            f"env name {k!r} is not an identifier" for k in self.env if not _ENV_NAME.fullmatch(k)
        ]
        problems += [f"extra line {x!r} spans lines" for x in self.extra if "\n" in x]
        if problems:
            raise BatchError(f"bad job request {self.name!r}: " + "; ".join(problems))

    def __reduce__(self) -> tuple[Callable[[dict[str, Any]], JobRequest], tuple[dict[str, Any]]]:
        # A MappingProxyType cannot be pickled: rebuild from plain values (and revalidate).
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["env"] = dict(self.env)
        return _rebuild_request, (values,)

    @property
    def walltime_seconds(self) -> float:
        """The walltime in seconds."""
        return self.walltime * 3600.0


def _rebuild_request(values: dict[str, Any]) -> JobRequest:
    return JobRequest(**values)


class BatchPlugin(ABC):
    """A batch system: three verbs over lists of ids, plus a script writer and a janitor.

    The contract every plugin keeps (``tests/batch/test_contract.py`` checks it, unchanged,
    against every plugin that can run on the test machine):

    * The constructor only stores settings (keyword options from the site config, plus
      ``variant`` for a ``name::variant`` spec). No commands, no files, no network: a plugin can
      be built where its scheduler is not installed.
    * ``write_script(request)`` renders the submit script (or runner description) into
      ``request.workdir`` and returns its path. ``submit`` calls it; it is public so that a
      site can inspect what would be submitted.
    * ``submit(requests)`` submits every request and returns the batch ids in the same order.
      A request the system can never satisfy (too many GPUs, say) raises ``BatchError``
      before anything is submitted; a command failure raises ``BatchCommandError``.
    * ``status(ids)`` answers for all ids with one query of the scheduler, not one per id,
      and returns an entry for every id asked about. An id the system does not know is
      ``VANISHED``: never guess that it completed. Unmapped native codes are ``UNKNOWN``
      (see ``native_state``). Walltime expiry is ``TIMEOUT``, not ``FAILED``.
    * ``cancel(ids)`` asks the system to end those jobs; ids that are unknown or already
      ended are ignored, as ``scancel`` does.
    * ``clean_queue(known_ids)`` cancels every job this plugin started that is still pending
      or running but not in ``known_ids`` (orphans of a lost database row or a crashed
      daemon) and returns their ids.
    * ``runs_dags`` is true when ``submit_dag`` leaves the whole DAG to the batch system
      (jobs held until their parents end well); a plugin without it is given a DAG one
      ready job at a time (``batch/foreground.py``).
    """

    name: ClassVar[str]
    runs_dags: ClassVar[bool] = False

    @abstractmethod
    def write_script(self, request: JobRequest) -> Path:
        """Write the submit script for ``request`` into its workdir; return the file's path."""

    @abstractmethod
    def submit(self, requests: Sequence[JobRequest]) -> list[str]:
        """Submit the requests; return their batch ids in the same order. If one fails, the
        ones before it are cancelled and the error is raised (``submit_each`` does this)."""

    def submit_each(
        self, requests: Sequence[JobRequest], one: Callable[[JobRequest, Path], str]
    ) -> list[str]:
        """Write every request's script (all render, or nothing is submitted), then submit
        them in order with ``one(request, script)``, which returns the batch id. If one fails,
        the jobs submitted before it are cancelled (a failed cancel is logged) and the error is
        raised: a failed call leaves nothing queued that nobody knows of."""
        scripts = [self.write_script(request) for request in requests]
        ids: list[str] = []
        for request, script in zip(requests, scripts, strict=True):
            try:
                ids.append(one(request, script))
            except BatchError:
                if ids:
                    log.warning(
                        "%s: a submission failed; cancelling the %d just submitted",
                        self.name, len(ids),
                    )  # fmt: skip
                    try:
                        self.cancel(ids)
                    except BatchError as exc:
                        log.error("%s: could not cancel %s after a failed submission: %s",
                                  self.name, ids, exc)  # fmt: skip
                raise
        return ids

    @abstractmethod
    def status(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """Report every id in ``ids`` (unknown ones as ``VANISHED``), with one query."""

    @abstractmethod
    def cancel(self, ids: Sequence[str]) -> None:
        """End the jobs with these ids; ignore ids that are unknown or already ended."""

    @abstractmethod
    def clean_queue(self, known_ids: Collection[str]) -> list[str]:
        """Cancel this plugin's pending or running jobs not in ``known_ids``; return their ids."""

    def submit_dag(
        self, requests: Sequence[JobRequest], parents: Sequence[Sequence[int]]
    ) -> list[str]:
        """Submit one job's tasks as a DAG: ``parents[i]`` are the indexes (earlier in
        ``requests``) that request ``i`` must wait for. Returns one id per request.

        By default each request is submitted in order with its parents' ids as ``after``;
        a system with its own DAG files (HTCondor's DAGMan) overrides this. If one
        submission fails, the ones before it are cancelled.
        """
        ids: list[str] = []
        try:
            for request, mine in zip(requests, parents, strict=True):
                after = (*request.after, *(ids[p] for p in mine))
                (job,) = self.submit([replace(request, after=after)])
                ids.append(job)
        except BatchError:
            self.cancel(ids)
            raise
        return ids


def available_plugins() -> list[str]:
    """The names registered under the ``frazil.batch`` entry-point group, sorted."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def load_plugin(name: str, **options: object) -> BatchPlugin:
    """Build the plugin registered as ``name`` with the site's ``options``.

    ``name`` may carry a variant, ``slurm::dag``; the part after ``::`` is passed to the
    constructor as ``variant=``. An unknown name, a class that is not a ``BatchPlugin`` or
    options the constructor refuses raise ``BatchError``.
    """
    base, sep, variant = name.partition("::")
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == base]
    if not found:
        known = ", ".join(available_plugins()) or "none"
        raise BatchError(f"no batch plugin named {base!r}; known: {known}")
    try:
        cls = found[0].load()
    except Exception as exc:  # an import error inside a plugin must name the plugin
        raise BatchError(f"batch plugin {base!r} cannot be loaded: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BatchPlugin)):
        raise BatchError(f"batch plugin {base!r} ({found[0].value}) is not a BatchPlugin")
    if sep:
        if not variant:
            raise BatchError(f"batch plugin spec {name!r} has an empty variant")
        options = {**options, "variant": variant}
    try:
        return cls(**options)
    except TypeError as exc:  # unknown or missing options from the site config
        raise BatchError(f"bad options for batch plugin {base!r}: {exc}") from exc
