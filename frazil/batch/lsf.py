"""The ``lsf`` batch plugin: IBM Spectrum LSF, driven by ``bsub``, ``bjobs`` and ``bkill``.

Not live-tested: no LSF cluster runs on the test machines. The tests check the scripts it
writes, the argv of every command, and its parsing of recorded ``bjobs -json`` output
(``tests/data/batch/lsf``).

* ``submit`` writes ``<workdir>/<name>.lsf`` and hands its text to ``bsub`` on standard
  input, which is what the shell idiom ``bsub < script`` does, without a shell. (Given the
  script's path as an argument, bsub reads its ``#BSUB`` lines only where the site set
  ``LSB_BSUB_PARSE_SCRIPT=Y``; elsewhere the job would run without its name or limits.)
* ``status`` is one ``bjobs -o "jobid stat exit_code exit_reason" -json -a ID...``; finished
  jobs stay visible for the cluster's ``CLEAN_PERIOD``, after that they are ``VANISHED``.
* A job's ``EXIT_REASON`` decides how an ``EXIT`` ended: ``TERM_RUNLIMIT`` is ``TIMEOUT``,
  ``TERM_OWNER``/``TERM_ADMIN`` (and their forced forms) ``CANCELLED``, ``TERM_PREEMPT``
  ``PREEMPTED``; anything else is ``FAILED``.
* Memory goes to ``-M`` and ``rusage[mem=]`` in ``memory_unit``, which must be the unit the
  site's ``LSF_UNIT_FOR_LIMITS`` sets (LSF's own default is KB; most sites use MB). Disk is
  not requested (LSF has no standard per-job disk resource; a site adds one with ``extra``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack

from frazil.batch.base import ENDED_STATES, BatchState, BatchStatus, JobRequest, native_state
from frazil.batch.directives import minutes
from frazil.batch.script import (
    JOB_NAME_PREFIX,
    ScriptOptions,
    ScriptPlugin,
    command_table,
    job_name,
)
from frazil.errors import BatchError

#: bjobs ``STAT`` codes mapped to the shared states (``EXIT`` is refined by its reason).
NATIVE_STATES = {
    "PEND": BatchState.PENDING,
    "WAIT": BatchState.PENDING,  # a chunk job member waiting for its turn
    "PROV": BatchState.PENDING,  # its host is being provisioned
    "RUN": BatchState.RUNNING,
    "DONE": BatchState.COMPLETED,
    "EXIT": BatchState.FAILED,
    "PSUSP": BatchState.HELD,  # suspended by its owner or an administrator while pending
    "USUSP": BatchState.HELD,  # suspended by its owner or an administrator while running
    "SSUSP": BatchState.HELD,  # suspended by LSF (load, run windows); resumes by itself
    # LSF itself does not know these jobs' fate yet: mbatchd lost its sbatchd (UNKWN), or a
    # kill waits for an unreachable host (ZOMBI, then EXIT).
    "UNKWN": BatchState.UNKNOWN,
    "ZOMBI": BatchState.UNKNOWN,
}
#: Termination reasons (``TERM_*`` keywords of bacct/bhist/bjobs) that are not plain failures.
TERMINATIONS = {
    "TERM_RUNLIMIT": BatchState.TIMEOUT,
    "TERM_OWNER": BatchState.CANCELLED,
    "TERM_FORCE_OWNER": BatchState.CANCELLED,
    "TERM_ADMIN": BatchState.CANCELLED,
    "TERM_FORCE_ADMIN": BatchState.CANCELLED,
    "TERM_PREEMPT": BatchState.PREEMPTED,
}
# The same reasons as LSF's manual words them, for an EXIT_REASON without the keyword.
_TERMINATION_TEXTS = (
    ("job killed after reaching lsf run time limit", "TERM_RUNLIMIT"),
    ("job killed by owner without time for cleanup", "TERM_FORCE_OWNER"),
    ("job killed by owner", "TERM_OWNER"),
    ("job killed by root or lsf administrator without time for cleanup", "TERM_FORCE_ADMIN"),
    ("job killed by root or lsf administrator", "TERM_ADMIN"),
    ("job killed after preemption", "TERM_PREEMPT"),
)
FIELDS = "jobid stat exit_code exit_reason"
MEMORY_UNITS = {"KB": 2**20, "MB": 2**10, "GB": 1}  # units per GB
_TERM = re.compile(r"\bTERM_[A-Z_]+\b")
_SUBMITTED = re.compile(r"Job <([0-9]+)> is submitted")
_JOB_ID = re.compile(r"[1-9][0-9]{0,17}")
# bjobs/bkill lines about ids LSF does not hold (any longer): not failures for us.
_UNKNOWN_JOB = re.compile(
    r"is not found|No matching job found|has already finished|No (?:unfinished )?job found",
    re.IGNORECASE,
)


class LsfPlugin(ScriptPlugin):
    """Submit each request as one LSF job script through ``bsub``.

    ``queue`` and ``account`` become ``-q`` and ``-P`` (the project); ``memory_unit`` is the
    site's ``LSF_UNIT_FOR_LIMITS`` (KB, MB or GB); ``bsub``, ``bjobs`` and ``bkill`` are the
    commands' paths. The other options are those of every script plugin (``ScriptPlugin``).
    """

    name = "lsf"
    script_suffix = ".lsf"
    default_commands = command_table("bsub", "bjobs", "bkill")
    unknown_job = _UNKNOWN_JOB
    vanished_reason = "bjobs does not know it"

    def __init__(
        self,
        *,
        queue: str | None = None,
        account: str | None = None,
        memory_unit: str = "MB",
        bsub: str | None = None,
        bjobs: str | None = None,
        bkill: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        super().__init__(**options)
        if memory_unit not in MEMORY_UNITS:
            raise BatchError(f"lsf: memory_unit {memory_unit!r} is not one of KB, MB, GB")
        self.queue = _directive_value(queue, "queue") if queue else None
        self.account = _directive_value(account, "account") if account else None
        self.memory_unit = memory_unit
        self._set_paths(bsub=bsub, bjobs=bjobs, bkill=bkill)

    def directives(self, request: JobRequest) -> list[str]:
        """The default ``#BSUB`` lines for ``request``, before the site's skip and extra."""
        memory = math.ceil(round(request.memory * MEMORY_UNITS[self.memory_unit], 6))
        lines = [
            f"#BSUB -J {job_name(request)}",
            f"#BSUB -n {request.cpu}",
            f'#BSUB -R "span[hosts=1] rusage[mem={memory}]"',
            f"#BSUB -M {memory}",
            f"#BSUB -W {minutes(request.walltime)}",
        ]
        if request.gpu:
            lines.append(f'#BSUB -gpu "num={request.gpu}"')
        lines.append(f"#BSUB -oo {_directive_value(str(request.stdout), 'stdout path')}")
        if request.stderr != request.stdout:
            lines.append(f"#BSUB -eo {_directive_value(str(request.stderr), 'stderr path')}")
        if self.queue:
            lines.append(f"#BSUB -q {self.queue}")
        if self.account:
            lines.append(f"#BSUB -P {self.account}")
        return lines

    def submit_one(self, request: JobRequest, script: Path) -> str:
        """``bsub`` with the script on stdin, from its workdir; the id is in what it prints."""
        result = self._run("bsub", [], cwd=request.workdir, input=script.read_text())
        return parse_submit(result.stdout)

    def lookup(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """One ``bjobs -a`` (finished jobs too) for all ids."""
        valid = sorted({i for i in ids if _JOB_ID.fullmatch(i)}, key=int)
        if not valid:
            return {}
        return parse_status(self._tolerant("bjobs", ["-o", FIELDS, "-json", "-a", *valid]))

    def cancel(self, ids: Sequence[str]) -> None:
        """``bkill`` the jobs; ignore ids LSF no longer holds or that have finished."""
        valid = [i for i in ids if _JOB_ID.fullmatch(i)]
        if valid:
            self._tolerant("bkill", valid)

    def list_ours(self) -> list[str]:
        """Our unfinished ``frazil-`` jobs: ``bjobs -J 'frazil-*'`` lists the user's own."""
        args = ["-o", FIELDS, "-json", "-J", f"{JOB_NAME_PREFIX}*"]
        listed = parse_status(self._tolerant("bjobs", args))
        return sorted((i for i, s in listed.items() if s.state not in ENDED_STATES), key=int)


def _directive_value(value: str, what: str) -> str:
    # bsub splits #BSUB lines on blanks; quotes would need an escaping it does not document.
    if not value or any(c.isspace() or c in "\"'" for c in value):
        raise BatchError(f"lsf: {what} {value!r} cannot go on a #BSUB line (blank or quote)")
    return value


# -- parsing --------------------------------------------------------------------------------


def parse_submit(stdout: str) -> str:
    """The job id from bsub's ``Job <1234> is submitted to queue <normal>.``"""
    match = _SUBMITTED.search(stdout)
    if match is None:
        raise BatchError(f"lsf: no job id in bsub output {stdout!r}")
    return match.group(1)


def parse_status(text: str) -> dict[str, BatchStatus]:
    """Map ``bjobs -o "jobid stat exit_code exit_reason" -json`` output to statuses by id.

    Records without a ``STAT`` (error records about unknown ids) are skipped; empty output
    is an empty dict; anything else that is not bjobs JSON raises ``BatchError``.
    """
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BatchError(f"lsf: unreadable JSON from bjobs: {exc}") from exc
    records = data.get("RECORDS") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise BatchError("lsf: bjobs JSON has no RECORDS list")
    statuses = {}
    for record in records:
        if isinstance(record, dict) and record.get("JOBID") and record.get("STAT"):
            status = _status(record)
            statuses[status.id] = status
    return statuses


def _status(record: Mapping[str, Any]) -> BatchStatus:
    job_id, stat = str(record["JOBID"]), str(record["STAT"])
    state = native_state("lsf", NATIVE_STATES, stat)
    reason = str(record.get("EXIT_REASON") or "").strip()
    code = _int(record.get("EXIT_CODE"))
    if state is BatchState.COMPLETED:
        return BatchStatus(job_id, state, stat, 0, reason)  # DONE: the job exited with 0
    if state is BatchState.FAILED:
        term = termination(reason)
        return BatchStatus(job_id, TERMINATIONS.get(term, state), stat, code, reason)
    return BatchStatus(job_id, state, stat, None, reason)


def termination(reason: str) -> str:
    """The ``TERM_*`` keyword an exit reason names or words, or ``""``."""
    match = _TERM.search(reason)
    if match:
        return match.group(0)
    lowered = reason.lower()
    return next((term for text, term in _TERMINATION_TEXTS if text in lowered), "")


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    return None
