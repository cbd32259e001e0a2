"""The shared base of the plugins that drive a scheduler through a submit script and its CLI.

Slurm, Grid Engine, PBS/Torque, LSF and HTCondor are each a ``ScriptPlugin`` subclass that
says only what differs between schedulers:

* ``directives(request)``: the default header lines, kept as data until rendered so that a
  site can drop some (``skip``) and add its own (``extra``), see ``directives.SiteLines``;
* ``submit_one(request, script)``: the submit command, and the job id read from its output;
* ``lookup(ids)``: the statuses of the ids the scheduler still lists, read from one query
  (or one of the queue, then one of the accounting records) by a pure parser;
* ``cancel(ids)``, and ``list_ours()``: the ids of this user's unfinished ``frazil-`` jobs.

The base does the rest once, for all of them. ``write_script`` writes the rendered script into
the request's workdir, readable by its owner only (it holds the job's environment).
``submit`` writes every script, then submits them in order and cancels what went in if one
submission fails (``BatchPlugin.submit_each``). ``status`` gives a job that the scheduler no
longer lists a grace of ``vanish_after`` seconds as ``UNKNOWN`` (Slurm and Grid Engine drop a
finished job from the queue before its accounting record is written) and then reports it
``VANISHED``, never completed. Every job is named ``frazil-<request name>`` (``job_name``), and
``clean_queue`` cancels the jobs so named that nobody knows. Every command runs through
``runner`` (``run_command``, or ``frazil.testing.FakeRunner`` in tests) with ``timeout``;
``clock`` measures the grace, so that tests pass a clock instead of waiting.

A new scheduler is a small subclass, often of an existing plugin: see "Add a scheduler" in
``docs/batch-plugins.md``.
"""

from __future__ import annotations

import logging
import re
import time
from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypedDict

from frazil.batch.base import BatchPlugin, BatchState, BatchStatus, JobRequest
from frazil.batch.directives import SiteLines, shell_script
from frazil.batch.run import CommandResult, run_command
from frazil.errors import BatchCommandError, BatchError

log = logging.getLogger(__name__)

#: Every batch job a script plugin submits is named ``frazil-<request name>``, so that
#: ``clean_queue`` can tell our jobs from the user's other work.
JOB_NAME_PREFIX = "frazil-"

Runner = Callable[..., CommandResult]


def job_name(request: JobRequest) -> str:
    """The scheduler-side name of ``request``'s job: its name, with ``JOB_NAME_PREFIX`` in
    front unless it already starts with it (the site names its requests ``frazil-...``)."""
    if request.name.startswith(JOB_NAME_PREFIX):
        return request.name
    return JOB_NAME_PREFIX + request.name


def command_table(*names: str | Mapping[str, str], **paths: str) -> Mapping[str, str]:
    """A read-only ``default_commands``: each of ``names`` run as itself (or a whole table of
    them), then each of ``paths`` as the executable given, so that a subclass can replace
    one: ``command_table(PbsPlugin.default_commands, qsub="msub")``."""
    table: dict[str, str] = {}
    for name in names:
        table.update({name: name} if isinstance(name, str) else name)
    return MappingProxyType({**table, **paths})


class ScriptOptions(TypedDict, total=False):
    """The options every script plugin takes besides its own (see ``ScriptPlugin``)."""

    extra: Sequence[str]
    skip: Sequence[str]
    timeout: float
    vanish_after: float
    variant: str | None
    runner: Runner
    clock: Callable[[], float]


class ScriptPlugin(BatchPlugin):
    """A scheduler driven by submit scripts and a few commands; subclasses fill in the rest.

    Options: ``extra`` and ``skip`` change the header lines (``SiteLines``); ``timeout`` is
    each command's limit in seconds; ``vanish_after`` the grace, in seconds of ``clock``,
    before an unlisted job is ``VANISHED``; ``variant`` one of ``variants`` (``slurm::dag``);
    ``runner`` replaces ``run_command``. The constructor runs nothing.
    """

    #: the script's file name is ``<request name><script_suffix>``, in the request's workdir
    script_suffix: ClassVar[str]
    #: written before every header line, the site's and the request's ``extra`` lines too
    #: (``"#SBATCH "``: Slurm's options are given without it); empty where ``directives``
    #: returns whole lines (``"#PBS -N ..."``)
    directive_prefix: ClassVar[str] = ""
    #: the executables the plugin runs, under their usual names (``command_table``); a
    #: subclass replaces one (``qsub="msub"``), a site's option gives its path
    default_commands: ClassVar[Mapping[str, str]] = MappingProxyType({})
    #: the variants the plugin accepts, the part after ``::`` in ``slurm::dag``
    variants: ClassVar[tuple[str, ...]] = ()
    #: a stderr line of a query or cancel that only says an id is unknown or ended (``_tolerant``)
    unknown_job: ClassVar[re.Pattern[str]] = re.compile(r"(?!)")  # by default: none is
    #: the reason a VANISHED status gives
    vanished_reason: ClassVar[str] = "the scheduler no longer lists it"

    #: seconds each command may take before it is killed
    timeout: float = 120.0
    #: seconds a job may be missing from every listing before it is VANISHED (0: at once, for
    #: schedulers that list an ended job in the same query as the queue)
    vanish_after: float = 0.0

    def __init__(
        self,
        *,
        extra: Sequence[str] = (),
        skip: Sequence[str] = (),
        timeout: float | None = None,
        vanish_after: float | None = None,
        variant: str | None = None,
        runner: Runner = run_command,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if variant is not None and variant not in self.variants:
            known = ", ".join(self.variants) or "none"
            raise BatchError(f"the {self.name} plugin has no variant {variant!r} (known: {known})")
        self.variant = variant
        self.lines = SiteLines(tuple(extra), tuple(skip))
        self.timeout = self.timeout if timeout is None else timeout
        self.vanish_after = self.vanish_after if vanish_after is None else vanish_after
        if self.timeout <= 0 or self.vanish_after < 0:
            raise BatchError(
                f"{self.name}: need timeout > 0 and vanish_after >= 0 "
                f"(got {self.timeout}, {self.vanish_after})"
            )
        self.commands = dict(self.default_commands)
        self.runner = runner
        self.clock = clock
        self._missing_since: dict[str, float] = {}

    # -- the script -----------------------------------------------------------------------

    @abstractmethod
    def directives(self, request: JobRequest) -> list[str]:
        """The default header lines for ``request``, before the site's skip and extra."""

    def header(self, request: JobRequest) -> list[str]:
        """The header lines as written: the defaults the site keeps, the site's extra lines,
        the request's extra lines, each after ``directive_prefix``."""
        lines = self.lines.render(self.directives(request), request.extra)
        return [self.directive_prefix + line for line in lines]

    def render_script(self, request: JobRequest) -> str:
        """The script for ``request``, as text (what ``write_script`` writes)."""
        return shell_script(self.header(request), request)

    def write_script(self, request: JobRequest) -> Path:
        """Write ``<workdir>/<name><script_suffix>``, readable by its owner only."""
        text = self.render_script(request)
        request.workdir.mkdir(parents=True, exist_ok=True)
        path = request.workdir / f"{request.name}{self.script_suffix}"
        path.touch(mode=0o700)
        path.chmod(0o700)  # before the environment goes in, should the file have existed
        path.write_text(text)
        return path

    # -- the verbs --------------------------------------------------------------------------

    def submit(self, requests: Sequence[JobRequest]) -> list[str]:
        """Write every script, then ``submit_one`` each in order; cancel what went in if one
        submission fails."""
        return self.submit_each(requests, self.submit_one)

    @abstractmethod
    def submit_one(self, request: JobRequest, script: Path) -> str:
        """Submit ``script`` (written for ``request``); return the job's batch id."""

    def status(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """What ``lookup`` finds; ids it does not find are ``UNKNOWN`` until they have been
        missing for ``vanish_after`` seconds, then ``VANISHED``."""
        if not ids:
            return {}
        listed = self.lookup(ids)
        now = self.clock()
        found = {}
        for job_id in ids:
            if job_id in listed:
                self._missing_since.pop(job_id, None)
                found[job_id] = listed[job_id]
            else:
                found[job_id] = self._unlisted(job_id, now)
        return found

    @abstractmethod
    def lookup(self, ids: Sequence[str]) -> Mapping[str, BatchStatus]:
        """The statuses of those ``ids`` that the scheduler lists, keyed by the ids as asked,
        from one query for all of them; ids that cannot be the scheduler's are not looked up."""

    def clean_queue(self, known_ids: Collection[str]) -> list[str]:
        """Cancel our unfinished ``frazil-`` jobs that are not in ``known_ids``."""
        known = {self.job_key(job_id) for job_id in known_ids}
        orphans = [job_id for job_id in self.list_ours() if self.job_key(job_id) not in known]
        if orphans:
            log.warning("%s: cancelling %d orphaned job(s): %s", self.name, len(orphans), orphans)
            self.cancel(orphans)
        return orphans

    @abstractmethod
    def list_ours(self) -> list[str]:
        """The ids of this user's pending, running or held jobs whose name starts with
        ``JOB_NAME_PREFIX``, from one query."""

    def job_key(self, job_id: str) -> str:
        """What tells two ids of one job apart from other jobs' (PBS drops the server name)."""
        return job_id

    def _unlisted(self, job_id: str, now: float) -> BatchStatus:
        # An id stays in _missing_since once VANISHED, so that it never reads UNKNOWN again;
        # without a grace there is nothing to remember.
        since = self._missing_since.setdefault(job_id, now) if self.vanish_after > 0 else now
        if now - since >= self.vanish_after:
            return BatchStatus(job_id, BatchState.VANISHED, "", reason=self.vanished_reason)
        reason = f"not listed (yet, or any more); VANISHED if still not in {self.vanish_after:g} s"
        return BatchStatus(job_id, BatchState.UNKNOWN, "", reason=reason)

    # -- commands ---------------------------------------------------------------------------

    def _set_paths(self, **paths: str | None) -> None:
        """Run the site's executables for the commands given (``qsub="/opt/pbs/bin/qsub"``)."""
        self.commands.update({name: path for name, path in paths.items() if path})

    def _run(self, command: str, args: Sequence[str], **options: Any) -> CommandResult:
        """Run ``commands[command]`` with ``args`` (and ``cwd``, ``env``, ``input``)."""
        result: CommandResult = self.runner(
            [self.commands[command], *args], timeout=self.timeout, **options
        )
        return result

    def _submitted_id(self, command: str, args: Sequence[str], pattern: re.Pattern[str]) -> str:
        """Run a submit command and read the job id that ``pattern`` finds on the last line
        it printed (a ``BatchCommandError`` if there is none)."""
        result = self._run(command, args)
        lines = result.stdout.strip().splitlines()
        m = pattern.match(lines[-1] if lines else "")
        if m is None:
            raise BatchCommandError(
                result.argv, result.returncode, result.stdout, result.stderr,
                f"{command} printed no job id",
            )  # fmt: skip
        return m.group(1)

    def _tolerant(self, command: str, args: Sequence[str]) -> str:
        """Run; a non-zero exit whose every complaint is about unknown or ended ids (each
        stderr line matches ``unknown_job``) still yields the stdout."""
        try:
            return self._run(command, args).stdout
        except BatchCommandError as exc:
            lines = [line for line in exc.stderr.splitlines() if line.strip()]
            if exc.returncode is None or not lines or not all(map(self.unknown_job.search, lines)):
                raise
            log.debug("%s: %s: %s", self.name, command, exc.stderr.strip())
            return exc.stdout
