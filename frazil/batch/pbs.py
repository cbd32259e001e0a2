"""The ``pbs`` batch plugin: OpenPBS / PBS Professional, or Torque (``flavor``).

Not live-tested: no PBS server runs on the test machines. The tests check the scripts it
writes, the argv of every command, and its parsing of recorded ``qstat`` output
(``tests/data/batch/pbs``).

The two flavors differ where it matters:

* status: OpenPBS answers ``qstat -x -f -F json ID...`` (``-x`` adds finished jobs while the
  server keeps job history); Torque answers ``qstat -f ID...`` as text (its ``-x`` means XML)
  and shows completed jobs for ``keep_completed`` seconds. Either way an id the server no
  longer knows is ``VANISHED``.
* resources: OpenPBS takes ``-l select=1:ncpus=N:mem=M[:ngpus=G]``; Torque takes
  ``-l nodes=1:ppn=N[:gpus=G]`` and ``-l mem=M``. Disk is not requested (PBS has no
  standard per-job disk resource; a site adds its own with ``extra``).
* walltime kills: the MoM records exit status -29 (OpenPBS ``JOB_EXEC_KILL_WALLTIME``) or
  -11 (Torque ``JOB_EXEC_OVERLIMIT_WT``; in OpenPBS -11 means a rerun). A ``comment``
  saying the walltime was exceeded counts too. Both read as ``TIMEOUT``.

Exit statuses above 256 are deaths by signal (256 + N) and are reported as 128 + N. A
finished job with no exit status never ran (deleted while queued) and reads ``CANCELLED``;
one deleted while running dies by a signal and reads ``FAILED``, since PBS records no
reason that tells ``qdel`` from other kills.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

from frazil.batch.base import ENDED_STATES, BatchState, BatchStatus, JobRequest, native_state
from frazil.batch.directives import hms, mebibytes
from frazil.batch.run import CommandResult
from frazil.batch.script import (
    JOB_NAME_PREFIX,
    ScriptOptions,
    ScriptPlugin,
    command_table,
    job_name,
)
from frazil.errors import BatchError

FLAVORS = ("openpbs", "torque")
#: ``job_state`` letters of both flavors mapped to the shared states.
NATIVE_STATES = {
    "Q": BatchState.PENDING,  # queued
    "W": BatchState.PENDING,  # waiting for its execution time (or a failed stage-in)
    "T": BatchState.PENDING,  # in transit to an execution queue
    "H": BatchState.HELD,
    "S": BatchState.HELD,  # suspended
    "U": BatchState.HELD,  # suspended while its workstation is busy (OpenPBS)
    "R": BatchState.RUNNING,
    "E": BatchState.RUNNING,  # exiting: output files may still be on the way back
    "B": BatchState.RUNNING,  # an array job that has begun (OpenPBS)
    "F": BatchState.COMPLETED,  # finished (OpenPBS): refined by Exit_status
    "C": BatchState.COMPLETED,  # completed (Torque): refined by exit_status
    "X": BatchState.COMPLETED,  # an expired subjob (OpenPBS): refined by Exit_status
    "M": BatchState.VANISHED,  # moved to another server: out of our sight
}
#: The exit status each flavor's MoM records for a job killed at its walltime.
WALLTIME_EXIT = {"openpbs": -29, "torque": -11}
_WALLTIME_COMMENT = re.compile(r"walltime.*exceed|exceed.*walltime", re.IGNORECASE)
_JOB_ID = re.compile(r"[0-9]+(?:\[[0-9]*\])?(?:\.[A-Za-z0-9_.-]+)?")
# qstat/qdel lines about ids the server does not hold (any longer): not failures for us.
_UNKNOWN_JOB = re.compile(
    r"Unknown Job Id|has finished|invalid state for job|Request invalid for state",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PbsJob:
    """The attributes of one job in ``qstat -f`` output that the plugin reads."""

    id: str
    name: str = ""
    owner: str = ""  # user@host
    state: str = ""
    exit_status: int | None = None
    comment: str = ""


class PbsPlugin(ScriptPlugin):
    """Submit each request as one PBS job script through ``qsub``.

    ``flavor`` is ``"openpbs"`` (also PBS Professional) or ``"torque"``; ``pbs::torque``
    sets it as the variant. ``queue`` and ``account`` become ``-q`` and ``-A``; ``user``
    (default: the current user) is whose ``frazil-`` jobs ``clean_queue`` may cancel;
    ``qsub``, ``qstat`` and ``qdel`` are the commands' paths. The other options are those of
    every script plugin (``ScriptPlugin``).
    """

    name = "pbs"
    variants = FLAVORS
    script_suffix = ".pbs"
    default_commands = command_table("qsub", "qstat", "qdel")
    unknown_job = _UNKNOWN_JOB
    vanished_reason = "qstat does not know it"

    def __init__(
        self,
        *,
        flavor: str = "openpbs",
        queue: str | None = None,
        account: str | None = None,
        user: str | None = None,
        qsub: str | None = None,
        qstat: str | None = None,
        qdel: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        super().__init__(**options)
        self.flavor = self.variant or flavor
        if self.flavor not in FLAVORS:
            raise BatchError(f"pbs: flavor {self.flavor!r} is not one of {', '.join(FLAVORS)}")
        self.queue = _directive_value(queue, "queue") if queue else None
        self.account = _directive_value(account, "account") if account else None
        self.user = user
        self._set_paths(qsub=qsub, qstat=qstat, qdel=qdel)

    def directives(self, request: JobRequest) -> list[str]:
        """The default ``#PBS`` lines for ``request``, before the site's skip and extra."""
        lines = [f"#PBS -N {job_name(request)}", "#PBS -S /bin/sh"]
        memory = _size(request.memory)
        if self.flavor == "openpbs":
            gpus = f":ngpus={request.gpu}" if request.gpu else ""
            lines.append(f"#PBS -l select=1:ncpus={request.cpu}:mem={memory}{gpus}")
        else:
            nodes = f"nodes=1:ppn={request.cpu}" + (f":gpus={request.gpu}" if request.gpu else "")
            lines += [f"#PBS -l {nodes}", f"#PBS -l mem={memory}"]
        lines.append(f"#PBS -l walltime={hms(request.walltime)}")
        lines.append(f"#PBS -o {_directive_value(str(request.stdout), 'stdout path')}")
        if request.stderr == request.stdout:
            lines.append("#PBS -j oe")
        else:
            lines.append(f"#PBS -e {_directive_value(str(request.stderr), 'stderr path')}")
        if self.queue:
            lines.append(f"#PBS -q {self.queue}")
        if self.account:
            lines.append(f"#PBS -A {self.account}")
        return lines

    def submit_one(self, request: JobRequest, script: Path) -> str:
        """``qsub`` the script from its workdir; the job id is what it prints."""
        return parse_submit(self._run("qsub", [str(script)], cwd=request.workdir).stdout)

    def lookup(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """One ``qstat`` for all ids (a job is found by its number, whatever the server name)."""
        valid = sorted({i for i in ids if _JOB_ID.fullmatch(i)})
        if not valid:
            return {}
        args = ["-x", "-f", "-F", "json"] if self.flavor == "openpbs" else ["-f"]
        found = parse_status(self._tolerant("qstat", [*args, *valid]), self.flavor)
        by_number = {_number(k): v for k, v in found.items()}
        statuses = {}
        for i in valid:
            status = found.get(i) or by_number.get(_number(i))
            if status:
                statuses[i] = _with_id(status, i)
        return statuses

    def cancel(self, ids: Sequence[str]) -> None:
        """``qdel`` the jobs; ignore ids the server no longer holds or that have finished."""
        valid = [i for i in ids if _JOB_ID.fullmatch(i)]
        if valid:
            self._tolerant("qdel", valid)

    def list_ours(self) -> list[str]:
        """This user's unfinished ``frazil-`` jobs in one ``qstat -f``."""
        args = ["-f", "-F", "json"] if self.flavor == "openpbs" else ["-f"]
        jobs = read_jobs(self._tolerant("qstat", args), self.flavor)
        user = self.user or getpass.getuser()
        return [
            job.id
            for job in jobs
            if job.name.startswith(JOB_NAME_PREFIX)
            and job.owner.partition("@")[0] == user
            and _job_status(job, self.flavor).state not in ENDED_STATES
        ]

    def job_key(self, job_id: str) -> str:
        """The job's sequence number: ``1234.server`` and ``1234.server.example.org`` are one."""
        return _number(job_id)

    def _run(self, command: str, args: Sequence[str], **options: Any) -> CommandResult:
        env = None
        if self.flavor == "torque" and "PBS_QSTAT_NO_COMPLETE" in os.environ:
            # It hides completed jobs from every qstat, which would make them look vanished.
            env = {k: v for k, v in os.environ.items() if k != "PBS_QSTAT_NO_COMPLETE"}
        return super()._run(command, args, env=env, **options)


def _directive_value(value: str, what: str) -> str:
    # qsub splits directive lines on blanks and reads "host:path" in -o/-e.
    if not value or any(c.isspace() or c in ":\"'" for c in value):
        raise BatchError(f"pbs: {what} {value!r} cannot go on a #PBS line (blank, quote or :)")
    return value


def _size(gb: float) -> str:
    mib = mebibytes(gb)
    return f"{mib // 1024}gb" if mib % 1024 == 0 else f"{mib}mb"


# -- parsing --------------------------------------------------------------------------------


def parse_submit(stdout: str) -> str:
    """The job id that ``qsub`` prints (``1234.server``)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines or not _JOB_ID.fullmatch(lines[-1]):
        raise BatchError(f"pbs: no job id in qsub output {stdout!r}")
    return lines[-1]


def parse_status(text: str, flavor: str = "openpbs") -> dict[str, BatchStatus]:
    """Map ``qstat -f`` output (JSON for OpenPBS, text for Torque) to statuses by job id."""
    return {job.id: _job_status(job, flavor) for job in read_jobs(text, flavor)}


def read_jobs(text: str, flavor: str = "openpbs") -> list[PbsJob]:
    """The jobs in ``qstat -f`` output of ``flavor``; raises ``BatchError`` if unreadable."""
    if flavor == "openpbs":
        return read_json(text)
    if flavor == "torque":
        return read_text(text)
    raise BatchError(f"pbs: flavor {flavor!r} is not one of {', '.join(FLAVORS)}")


def read_json(text: str) -> list[PbsJob]:
    """The jobs in ``qstat -f -F json`` output (OpenPBS, PBS Professional)."""
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BatchError(f"pbs: unreadable JSON from qstat: {exc}") from exc
    # With no job to show, qstat prints only its prolog (timestamp, version, server).
    jobs = data.get("Jobs", {}) if isinstance(data, dict) else None
    if not isinstance(jobs, dict):
        raise BatchError("pbs: qstat JSON is not an object with a 'Jobs' object")
    return [_job(job_id, attrs) for job_id, attrs in jobs.items() if isinstance(attrs, dict)]


def read_text(text: str) -> list[PbsJob]:
    """The jobs in ``qstat -f`` text output (Torque; OpenPBS without ``-F json`` alike).

    Each job starts with ``Job Id: ID``; attributes are indented ``name = value`` lines; a
    long value continues on lines that start with a tab.
    """
    records: list[tuple[str, dict[str, str]]] = []
    last = ""
    for line in text.splitlines():
        if line.startswith("Job Id:"):
            records.append((line.partition(":")[2].strip(), {}))
            last = ""
        elif records and line.startswith("\t") and last:
            records[-1][1][last] += line.strip()
        elif records and " = " in line:
            key, _, value = line.partition(" = ")
            last = key.strip()
            records[-1][1][last] = value.strip()
    return [_job(job_id, attrs) for job_id, attrs in records]


def _job(job_id: str, attrs: Mapping[str, Any]) -> PbsJob:
    # OpenPBS writes Exit_status, Torque exit_status; JSON gives numbers, text gives strings.
    exit_status = attrs.get("Exit_status", attrs.get("exit_status"))
    return PbsJob(
        id=job_id,
        name=str(attrs.get("Job_Name", "")),
        owner=str(attrs.get("Job_Owner", "")),
        state=str(attrs.get("job_state", "")),
        exit_status=_int(exit_status),
        comment=str(attrs.get("comment", "")),
    )


def _job_status(job: PbsJob, flavor: str) -> BatchStatus:
    state = native_state("pbs", NATIVE_STATES, job.state)
    if state is BatchState.VANISHED:
        return BatchStatus(job.id, state, job.state, None, f"moved elsewhere; {job.comment}")
    if state is not BatchState.COMPLETED:
        return BatchStatus(job.id, state, job.state, None, job.comment)
    code = job.exit_status
    if code == WALLTIME_EXIT.get(flavor) or _WALLTIME_COMMENT.search(job.comment):
        return BatchStatus(job.id, BatchState.TIMEOUT, job.state, None, job.comment)
    if code is None:
        reason = f"ended without an exit status (deleted before it ran?) {job.comment}"
        return BatchStatus(job.id, BatchState.CANCELLED, job.state, None, reason.strip())
    if code == 0:
        return BatchStatus(job.id, BatchState.COMPLETED, job.state, 0, job.comment)
    if code > 256:
        reason = f"killed by signal {code - 256}; {job.comment}"
        return BatchStatus(job.id, BatchState.FAILED, job.state, 128 + code - 256, reason)
    if code < 0:
        reason = f"PBS exit status {code} (the job could not run); {job.comment}"
        return BatchStatus(job.id, BatchState.FAILED, job.state, None, reason)
    return BatchStatus(job.id, BatchState.FAILED, job.state, code, job.comment)


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    return None


def _number(job_id: str) -> str:
    return job_id.partition(".")[0]


def _with_id(status: BatchStatus, job_id: str) -> BatchStatus:
    if status.id == job_id:
        return status
    return BatchStatus(job_id, status.state, status.native, status.exit_code, status.reason)
