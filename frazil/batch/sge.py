"""Son of Grid Engine: ``qsub``, ``qstat -xml``, ``qacct``, ``qdel``.

Requests become ``#$`` lines, kept as data until rendered (``extra`` adds, ``skip`` drops by
option). ``qsub -w e`` makes the scheduler refuse a request it could never satisfy instead of
keeping it forever. Waiting and running jobs come from one ``qstat -xml``; jobs that left the
queue are read from the accounting file in one ``qacct -j`` (after SGE flushes it), where
``failed 37`` means the ``h_rt`` limit (TIMEOUT) and a deletion shows as ``failed 100`` with
exit status 137. Ids found nowhere are VANISHED, after the grace (``vanish_after``) that
covers the time between the two. Dependencies become ``-hold_jid``. SGE sets
no ``CUDA_VISIBLE_DEVICES``: GPUs are a consumable (``-l gpu=N``) the site must define.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Unpack
from xml.etree import ElementTree

from frazil.batch.base import BatchState, BatchStatus, JobRequest, native_state
from frazil.batch.directives import hms, mebibytes
from frazil.batch.script import (
    JOB_NAME_PREFIX,
    ScriptOptions,
    ScriptPlugin,
    command_table,
    job_name,
)
from frazil.errors import BatchCommandError

log = logging.getLogger(__name__)

#: qstat's state letters; the most telling letter decides (E before h before r ...).
STATES: Mapping[str, BatchState] = {
    "qw": BatchState.PENDING,
    "hqw": BatchState.HELD,
    "hRwq": BatchState.HELD,
    "r": BatchState.RUNNING,
    "t": BatchState.RUNNING,
    "Rr": BatchState.RUNNING,
    "Rt": BatchState.RUNNING,
    "s": BatchState.HELD,
    "ts": BatchState.HELD,
    "S": BatchState.HELD,
    "tS": BatchState.HELD,
    "T": BatchState.HELD,
    "tT": BatchState.HELD,
    "Eqw": BatchState.FAILED,
    "Ehqw": BatchState.FAILED,
    "EhRqw": BatchState.FAILED,
    "dr": BatchState.CANCELLED,
    "dt": BatchState.CANCELLED,
    "dRr": BatchState.CANCELLED,
    "dRt": BatchState.CANCELLED,
    "ds": BatchState.CANCELLED,
    "dS": BatchState.CANCELLED,
    "dT": BatchState.CANCELLED,
}

_ID = re.compile(r"^(\d+)(?:\.\d+-\d+:\d+)?$")
#: qacct ``failed`` codes that mean the job hit its ``h_rt``/``s_rt`` limit.
_TIME_LIMIT_FAILED = {"37"}


def parse_qstat_xml(text: str) -> dict[str, BatchStatus]:
    """Statuses of waiting and running jobs from ``qstat -u '*' -xml``."""
    out: dict[str, BatchStatus] = {}
    if not text.strip():
        return out
    root = ElementTree.fromstring(text)  # noqa: S314 - the local qstat's output, not user input
    for job in root.iter("job_list"):
        job_id = (job.findtext("JB_job_number") or "").strip()
        native = (job.findtext("state") or "").strip()
        if job_id:
            out[job_id] = BatchStatus(job_id, native_state("sge", STATES, native), native)
    return out


def parse_qacct(text: str) -> dict[str, BatchStatus]:
    """Statuses of jobs that left the queue, from ``qacct -j`` (the last record of an id wins)."""
    out: dict[str, BatchStatus] = {}
    for block in re.split(r"^=+\s*$", text, flags=re.MULTILINE):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                fields[key] = value.strip()
        job_id = fields.get("jobnumber")
        if not job_id:
            continue
        failed = fields.get("failed", "0").split()[0]
        exit_status = int(fields.get("exit_status", "0").split()[0] or 0)
        reason = fields.get("failed", "")
        if failed in _TIME_LIMIT_FAILED:
            state = BatchState.TIMEOUT
        elif failed == "100" and exit_status == 137:  # qdel of a running job
            state = BatchState.CANCELLED
        elif failed != "0" or exit_status != 0:
            state = BatchState.FAILED
        else:
            state = BatchState.COMPLETED
        native = f"failed={failed} exit_status={exit_status}"
        out[job_id] = BatchStatus(
            job_id, state, native, exit_status, "" if failed == "0" else reason
        )
    return out


class SgePlugin(ScriptPlugin):
    """Submits to (Son of) Grid Engine.

    Options: queue, project, parallel_environment (for cpu > 1, default ``smp``),
    gpu_resource (the consumable's name, default ``gpu``), memory_resource (e.g. ``h_vmem``;
    none by default, as memory is rarely a consumable), and those of every script plugin
    (``ScriptPlugin``).
    """

    name = "sge"
    runs_dags = True
    variants = ("dag",)
    script_suffix = ".sge"
    directive_prefix = "#$ "
    default_commands = command_table("qsub", "qstat", "qacct", "qdel")
    vanished_reason = "unknown to SGE"
    timeout = 30.0
    # a job between the queue and the accounting record is not gone yet
    vanish_after = 120.0

    def __init__(
        self,
        *,
        queue: str | None = None,
        project: str | None = None,
        parallel_environment: str = "smp",
        gpu_resource: str = "gpu",
        memory_resource: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        super().__init__(**options)
        self.queue, self.project = queue, project
        self.parallel_environment = parallel_environment
        self.gpu_resource, self.memory_resource = gpu_resource, memory_resource

    def directives(self, request: JobRequest) -> list[str]:
        """The ``#$`` options of a request, before ``skip`` and ``extra``."""
        r = request
        lines = [
            f"-N {job_name(r)}",
            "-S /bin/sh",
            f"-wd {shlex.quote(str(r.workdir))}",
            f"-o {shlex.quote(str(r.stdout))}",
            f"-e {shlex.quote(str(r.stderr))}",
            f"-l h_rt={hms(max(r.walltime, 1 / 60), hour_digits=1)}",  # at least a minute
        ]
        if r.cpu > 1:
            lines.append(f"-pe {self.parallel_environment} {r.cpu}")
        if r.gpu:
            lines.append(f"-l {self.gpu_resource}={r.gpu}")
        if self.memory_resource:
            lines.append(f"-l {self.memory_resource}={mebibytes(r.memory / r.cpu)}M")  # per slot
        if self.queue:
            lines.append(f"-q {self.queue}")
        if self.project:
            lines.append(f"-P {self.project}")
        if r.after:
            lines.append(f"-hold_jid {','.join(r.after)}")
        return lines

    def render_script(self, request: JobRequest) -> str:
        """The script for ``request``; a CPU task is kept from every GPU, as SGE sets no
        ``CUDA_VISIBLE_DEVICES``."""
        if not request.gpu:
            request = replace(request, env={**request.env, "CUDA_VISIBLE_DEVICES": ""})
        return super().render_script(request)

    def submit_one(self, request: JobRequest, script: Path) -> str:
        """``qsub -terse -w e`` (refuse what could never run); the job id is what it prints."""
        return self._submitted_id("qsub", ["-terse", "-w", "e", str(script)], _ID)

    def lookup(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """One ``qstat -xml``; one ``qacct -j`` for the ids that left the queue."""
        queued = parse_qstat_xml(self._run("qstat", ["-u", "*", "-xml"]).stdout)
        found = {i: queued[i] for i in ids if i in queued}
        missing = [i for i in ids if i not in found]
        if missing:
            try:
                done = parse_qacct(self._run("qacct", ["-j", "*"]).stdout)
            except BatchCommandError as exc:  # no accounting file yet
                log.debug("qacct cannot help: %s", exc)
                done = {}
            found.update({i: done[i] for i in missing if i in done})
        return found

    def cancel(self, ids: Sequence[str]) -> None:
        """``qdel`` (a job that already left is not an error)."""
        numeric = [i for i in ids if i.isdigit()]
        if not numeric:
            return
        try:
            self._run("qdel", numeric)
        except BatchCommandError as exc:
            if "does not exist" not in (exc.stdout + exc.stderr):
                raise

    def list_ours(self) -> list[str]:
        """Our ``frazil-`` jobs in ``qstat`` (which lists unfinished jobs only)."""
        user = os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
        text = self._run("qstat", ["-u", user, "-xml"]).stdout
        root = ElementTree.fromstring(text) if text.strip() else None  # noqa: S314
        ours = []
        for job in root.iter("job_list") if root is not None else ():
            job_id = (job.findtext("JB_job_number") or "").strip()
            name = (job.findtext("JB_name") or "").strip()
            if name.startswith(JOB_NAME_PREFIX) and job_id:
                ours.append(job_id)
        return ours
