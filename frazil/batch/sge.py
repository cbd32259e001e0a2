"""Son of Grid Engine: ``qsub``, ``qstat -xml``, ``qacct``, ``qdel``.

Requests become ``#$`` lines, kept as data until rendered (``extra`` adds, ``skip`` drops by
option). ``qsub -w e`` makes the scheduler refuse a request it could never satisfy instead of
keeping it forever. Waiting and running jobs come from one ``qstat -xml``; jobs that left the
queue are read from the accounting file in one ``qacct -j`` (after SGE flushes it), where
``failed 37`` means the ``h_rt`` limit (TIMEOUT) and a deletion shows as ``failed 100`` with
exit status 137. Ids found nowhere are VANISHED. Dependencies become ``-hold_jid``. SGE sets
no ``CUDA_VISIBLE_DEVICES``: GPUs are a consumable (``-l gpu=N``) the site must define.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from xml.etree import ElementTree

from frazil.batch.base import BatchPlugin, BatchState, BatchStatus, JobRequest, native_state
from frazil.batch.run import CommandResult, run_command
from frazil.errors import BatchCommandError, BatchError

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

Runner = Callable[..., CommandResult]


def _duration(hours: float) -> str:
    seconds = max(60, math.ceil(hours * 3600))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


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


class SgePlugin(BatchPlugin):
    """Submits to (Son of) Grid Engine.

    Options: queue, project, parallel_environment (for cpu > 1, default ``smp``),
    gpu_resource (the consumable's name, default ``gpu``), memory_resource (e.g. ``h_vmem``;
    none by default, as memory is rarely a consumable), extra, skip.
    """

    name = "sge"
    runs_dags = True

    def __init__(
        self,
        *,
        queue: str | None = None,
        project: str | None = None,
        parallel_environment: str = "smp",
        gpu_resource: str = "gpu",
        memory_resource: str | None = None,
        extra: Sequence[str] = (),
        skip: Sequence[str] = (),
        timeout: float = 30.0,
        vanish_after: float = 120.0,
        variant: str | None = None,
        runner: Runner = run_command,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if variant not in (None, "dag"):
            raise BatchError(f"the sge plugin has no variant {variant!r} (known: dag)")
        self.variant = variant
        self.queue, self.project = queue, project
        self.parallel_environment = parallel_environment
        self.gpu_resource, self.memory_resource = gpu_resource, memory_resource
        self.extra, self.skip = tuple(extra), tuple(skip)
        self.timeout = timeout
        self.runner = runner
        # a job between the queue and the accounting record is not gone yet: only one that
        # stays unknown this long is VANISHED
        self.vanish_after = vanish_after
        self.clock = clock
        self._missing_since: dict[str, float] = {}

    def directives(self, r: JobRequest) -> list[str]:
        """The ``#$`` options of a request, before ``skip`` and ``extra``."""
        lines = [
            f"-N {r.name}",
            "-S /bin/sh",
            f"-wd {shlex.quote(str(r.workdir))}",
            f"-o {shlex.quote(str(r.stdout))}",
            f"-e {shlex.quote(str(r.stderr))}",
            f"-l h_rt={_duration(r.walltime)}",
        ]
        if r.cpu > 1:
            lines.append(f"-pe {self.parallel_environment} {r.cpu}")
        if r.gpu:
            lines.append(f"-l {self.gpu_resource}={r.gpu}")
        if self.memory_resource:
            per_slot = r.memory / max(r.cpu, 1)
            lines.append(f"-l {self.memory_resource}={max(1, math.ceil(per_slot * 1024))}M")
        if self.queue:
            lines.append(f"-q {self.queue}")
        if self.project:
            lines.append(f"-P {self.project}")
        if r.after:
            lines.append(f"-hold_jid {','.join(r.after)}")
        kept = [x for x in lines if not any(x.startswith(s) for s in self.skip)]
        return [*kept, *self.extra, *r.extra]

    def write_script(self, request: JobRequest) -> Path:
        """Write ``<workdir>/<name>.sge`` and return its path."""
        lines = ["#!/bin/sh", *(f"#$ {d}" for d in self.directives(request))]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in request.env.items()]
        if not request.gpu:
            lines.append("export CUDA_VISIBLE_DEVICES=''")  # CPU tasks never see a GPU
        lines.append("exec " + shlex.join(request.argv))
        path = Path(request.workdir) / f"{request.name}.sge"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o700)
        return path

    def _run(self, argv: list[str]) -> CommandResult:
        return self.runner(argv, timeout=self.timeout)

    def submit(self, requests: Sequence[JobRequest]) -> list[str]:
        """``qsub -terse -w e`` each request; returns their job ids in order (deletes what
        went in if one fails)."""

        def one(_request: JobRequest, script: Path) -> str:
            result = self._run(["qsub", "-terse", "-w", "e", str(script)])
            m = _ID.match(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "")
            if m is None:
                raise BatchCommandError(
                    result.argv, result.returncode, result.stdout, result.stderr,
                    "qsub printed no job id",
                )  # fmt: skip
            return m.group(1)

        return self.submit_each(requests, one)

    def status(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """One ``qstat -xml``; one ``qacct -j`` for the ids that left the queue."""
        if not ids:
            return {}
        queued = parse_qstat_xml(self._run(["qstat", "-u", "*", "-xml"]).stdout)
        out = {i: queued[i] for i in ids if i in queued}
        missing = [i for i in ids if i not in out]
        if missing:
            try:
                done = parse_qacct(self._run(["qacct", "-j", "*"]).stdout)
            except BatchCommandError as exc:  # no accounting file yet
                log.debug("qacct cannot help: %s", exc)
                done = {}
            out.update({i: done[i] for i in missing if i in done})
        now = self.clock()
        for i in ids:
            if i in out:
                self._missing_since.pop(i, None)
                continue
            since = self._missing_since.setdefault(i, now)
            if now - since >= self.vanish_after:
                out[i] = BatchStatus(i, BatchState.VANISHED, "", reason="unknown to SGE")
            else:
                out[i] = BatchStatus(
                    i,
                    BatchState.UNKNOWN,
                    "",
                    reason="left the queue; its record is not written yet",
                )
        return out

    def cancel(self, ids: Sequence[str]) -> None:
        """``qdel`` (a job that already left is not an error)."""
        numeric = [i for i in ids if i.isdigit()]
        if not numeric:
            return
        try:
            self._run(["qdel", *numeric])
        except BatchCommandError as exc:
            if "does not exist" not in (exc.stdout + exc.stderr):
                raise

    def clean_queue(self, known_ids: Collection[str]) -> list[str]:
        """Cancel our ``frazil-`` jobs in the queue that nobody knows."""
        user = os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
        text = self._run(["qstat", "-u", user, "-xml"]).stdout
        root = ElementTree.fromstring(text) if text.strip() else None  # noqa: S314
        orphans = []
        for job in root.iter("job_list") if root is not None else ():
            job_id = (job.findtext("JB_job_number") or "").strip()
            name = (job.findtext("JB_name") or "").strip()
            if name.startswith("frazil-") and job_id and job_id not in known_ids:
                orphans.append(job_id)
        self.cancel(orphans)
        return orphans
