"""Slurm: ``sbatch``, ``scontrol show job``, ``sacct``, ``scancel``.

Requests become ``#SBATCH`` lines, kept as data until rendered so that a site can add lines
(``extra``) or drop default ones by their option name (``skip=["--tmp"]``). Status is one
``scontrol show job -o`` for every job the controller still remembers (``MinJobAge``); ids
it no longer knows are looked up once in ``sacct`` (which works without a database when
``JobCompType=jobcomp/filetxt``), and are VANISHED when that fails too. The ``dag`` variant
is accepted: dependencies (``after``) become ``--dependency=afterok:...``.
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

from frazil.batch.base import BatchPlugin, BatchState, BatchStatus, JobRequest, native_state
from frazil.batch.run import CommandResult, run_command
from frazil.errors import BatchCommandError, BatchError

log = logging.getLogger(__name__)

STATES: Mapping[str, BatchState] = {
    "PENDING": BatchState.PENDING,
    "CONFIGURING": BatchState.PENDING,
    "REQUEUED": BatchState.PENDING,
    "REQUEUE_FED": BatchState.PENDING,
    "REQUEUE_HOLD": BatchState.HELD,
    "RESV_DEL_HOLD": BatchState.HELD,
    "RUNNING": BatchState.RUNNING,
    "COMPLETING": BatchState.RUNNING,
    "STAGE_OUT": BatchState.RUNNING,
    "SIGNALING": BatchState.RUNNING,
    "RESIZING": BatchState.RUNNING,
    "SUSPENDED": BatchState.HELD,
    "STOPPED": BatchState.HELD,
    "COMPLETED": BatchState.COMPLETED,
    "FAILED": BatchState.FAILED,
    "NODE_FAIL": BatchState.FAILED,
    "BOOT_FAIL": BatchState.FAILED,
    "OUT_OF_MEMORY": BatchState.FAILED,
    "SPECIAL_EXIT": BatchState.FAILED,
    "CANCELLED": BatchState.CANCELLED,
    "REVOKED": BatchState.CANCELLED,
    "TIMEOUT": BatchState.TIMEOUT,
    "DEADLINE": BatchState.TIMEOUT,
    "PREEMPTED": BatchState.PREEMPTED,
}

_ID = re.compile(r"^(\d+)(?:;\S+)?$")
_FIELD = re.compile(r"(\w+)=(\S*)")

Runner = Callable[..., CommandResult]


def _duration(hours: float) -> str:
    minutes = max(1, math.ceil(hours * 60))
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def parse_scontrol(text: str) -> dict[str, BatchStatus]:
    """Statuses from ``scontrol show job -o`` (one job per line, ``Key=Value`` fields)."""
    out: dict[str, BatchStatus] = {}
    for line in text.splitlines():
        fields = dict(_FIELD.findall(line))
        job_id = fields.get("JobId")
        if not job_id:
            continue
        native = fields.get("JobState", "")
        exit_code: int | None = None
        code = fields.get("ExitCode", "")
        if ":" in code:
            status, signal = (int(x) for x in code.split(":", 1))
            exit_code = 128 + signal if signal else status
        reason = fields.get("Reason", "")
        out[job_id] = BatchStatus(
            id=job_id,
            state=native_state("slurm", STATES, native),
            native=native,
            exit_code=exit_code,
            reason="" if reason in ("None", "(null)") else reason,
        )
    return out


def parse_sacct(text: str) -> dict[str, BatchStatus]:
    """Statuses from ``sacct -P -n -o JobID,State,ExitCode`` (steps like ``12.batch`` skipped)."""
    out: dict[str, BatchStatus] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or "." in parts[0] or not parts[0]:
            continue
        job_id, native, code = parts[0], parts[1].split()[0], parts[2]
        exit_code: int | None = None
        if ":" in code:
            status, signal = (int(x) for x in code.split(":", 1))
            exit_code = 128 + signal if signal else status
        out[job_id] = BatchStatus(job_id, native_state("slurm", STATES, native), native, exit_code)
    return out


class SlurmPlugin(BatchPlugin):
    """Submits to Slurm.

    Options: partition, account, qos, constraint, extra, skip, gpu_flag (``--gpus={n}`` on
    clusters without GRES), request_disk (ask for ``--tmp``; needs TmpDisk on the nodes).
    """

    name = "slurm"
    runs_dags = True

    def __init__(
        self,
        *,
        partition: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        constraint: str | None = None,
        extra: Sequence[str] = (),
        skip: Sequence[str] = (),
        gpu_flag: str = "--gres=gpu:{n}",
        request_disk: bool = False,
        timeout: float = 30.0,
        vanish_after: float = 120.0,
        variant: str | None = None,
        runner: Runner = run_command,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if variant not in (None, "dag"):
            raise BatchError(f"the slurm plugin has no variant {variant!r} (known: dag)")
        self.variant = variant
        self.partition, self.account, self.qos, self.constraint = (
            partition,
            account,
            qos,
            constraint,
        )
        self.extra, self.skip = tuple(extra), tuple(skip)
        self.gpu_flag = gpu_flag
        # --tmp only works where nodes declare TmpDisk; many do not, so it is opt-in
        self.request_disk = request_disk
        self.timeout = timeout
        self.runner = runner
        # a job between the queue and the accounting record is not gone yet: only one that
        # stays unknown this long is VANISHED
        self.vanish_after = vanish_after
        self.clock = clock
        self._missing_since: dict[str, float] = {}

    # -- submit scripts ---------------------------------------------------------------------

    def directives(self, r: JobRequest) -> list[str]:
        """The ``#SBATCH`` options of a request, before ``skip`` and ``extra``."""
        lines = [
            f"--job-name={r.name}",
            f"--chdir={r.workdir}",
            f"--output={r.stdout}",
            f"--error={r.stderr}",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={r.cpu}",
            f"--mem={max(1, math.ceil(r.memory * 1024))}M",
            f"--time={_duration(r.walltime)}",
        ]
        if self.request_disk and r.disk > 0:
            lines.append(f"--tmp={max(1, math.ceil(r.disk * 1024))}M")
        if r.gpu:
            lines.append(self.gpu_flag.format(n=r.gpu))
        for flag, value in (
            ("--partition", self.partition),
            ("--account", self.account),
            ("--qos", self.qos),
            ("--constraint", self.constraint),
        ):
            if value:
                lines.append(f"{flag}={value}")
        if r.after:
            lines.append("--dependency=afterok:" + ":".join(r.after))
            lines.append("--kill-on-invalid-dep=yes")
        kept = [x for x in lines if not any(x.startswith(s) for s in self.skip)]
        return [*kept, *self.extra, *r.extra]

    def write_script(self, request: JobRequest) -> Path:
        """Write ``<workdir>/<name>.slurm`` and return its path."""
        lines = ["#!/bin/sh"]
        lines += [f"#SBATCH {d}" for d in self.directives(request)]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in request.env.items()]
        lines.append("exec " + shlex.join(request.argv))
        path = Path(request.workdir) / f"{request.name}.slurm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o700)
        return path

    # -- the verbs --------------------------------------------------------------------------

    def _run(self, argv: list[str]) -> CommandResult:
        return self.runner(argv, timeout=self.timeout)

    def submit(self, requests: Sequence[JobRequest]) -> list[str]:
        """``sbatch --parsable`` each request; returns their job ids in order (cancels what
        went in if one fails)."""

        def one(_request: JobRequest, script: Path) -> str:
            result = self._run(["sbatch", "--parsable", str(script)])
            m = _ID.match(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "")
            if m is None:
                raise BatchCommandError(
                    result.argv, result.returncode, result.stdout, result.stderr,
                    "sbatch printed no job id",
                )  # fmt: skip
            return m.group(1)

        return self.submit_each(requests, one)

    def status(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """One ``scontrol`` for all; ``sacct`` once for those the controller forgot."""
        if not ids:
            return {}
        known = parse_scontrol(self._run(["scontrol", "show", "job", "-o"]).stdout)
        out = {i: known[i] for i in ids if i in known}
        missing = [i for i in ids if i not in out and i.isdigit()]
        if missing:
            try:
                text = self._run(
                    [
                        "sacct",
                        "-c",
                        "-P",
                        "-n",
                        "-o",
                        "JobID,State,ExitCode",
                        "-j",
                        ",".join(missing),
                    ]
                ).stdout
                out.update({k: v for k, v in parse_sacct(text).items() if k in missing})
            except BatchCommandError as exc:
                log.debug("sacct cannot help: %s", exc)
        now = self.clock()
        for i in ids:
            if i in out:
                self._missing_since.pop(i, None)
                continue
            since = self._missing_since.setdefault(i, now)
            if now - since >= self.vanish_after:
                out[i] = BatchStatus(i, BatchState.VANISHED, "", reason="unknown to Slurm")
            else:
                out[i] = BatchStatus(
                    i,
                    BatchState.UNKNOWN,
                    "",
                    reason="left the queue; its record is not written yet",
                )
        return out

    def cancel(self, ids: Sequence[str]) -> None:
        """``scancel`` (ids that cannot be Slurm's are skipped; ended jobs are ignored)."""
        numeric = [i for i in ids if i.isdigit()]
        if not numeric:
            return
        try:
            self._run(["scancel", *numeric])
        except BatchCommandError as exc:
            if "Invalid job id" not in exc.stderr:
                raise

    def clean_queue(self, known_ids: Collection[str]) -> list[str]:
        """Cancel our ``frazil-`` jobs in the queue that nobody knows."""
        user = os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
        text = self._run(["squeue", "-h", "-u", user, "-o", "%i|%j"]).stdout
        orphans = [
            job_id
            for job_id, _, name in (line.partition("|") for line in text.splitlines())
            if name.startswith("frazil-") and job_id and job_id not in known_ids
        ]
        self.cancel(orphans)
        return orphans
