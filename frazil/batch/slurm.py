"""Slurm: ``sbatch``, ``scontrol show job``, ``sacct``, ``scancel``, ``squeue``.

Requests become ``#SBATCH`` lines, kept as data until rendered so that a site can add options
(``extra = ["--exclusive"]``) or drop default ones by their option name (``skip=["--tmp"]``).
Status is one ``scontrol show job -o`` for every job the controller still remembers
(``MinJobAge``); ids it no longer knows are looked up once in ``sacct`` (which works without a
database when ``JobCompType=jobcomp/filetxt``), and are VANISHED when that fails too, after
the grace (``vanish_after``) that covers the time between the two. The ``dag`` variant is
accepted: dependencies (``after``) become ``--dependency=afterok:...``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Unpack

from frazil.batch.base import BatchState, BatchStatus, JobRequest, native_state
from frazil.batch.directives import hms, mebibytes, minutes
from frazil.batch.script import (
    JOB_NAME_PREFIX,
    ScriptOptions,
    ScriptPlugin,
    command_table,
    job_name,
)
from frazil.errors import BatchCommandError

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


class SlurmPlugin(ScriptPlugin):
    """Submits to Slurm.

    Options: partition, account, qos, constraint, gpu_flag (``--gpus={n}`` on clusters
    without GRES), request_disk (ask for ``--tmp``; needs TmpDisk on the nodes), and those of
    every script plugin (``ScriptPlugin``).
    """

    name = "slurm"
    runs_dags = True
    variants = ("dag",)
    script_suffix = ".slurm"
    directive_prefix = "#SBATCH "
    default_commands = command_table("sbatch", "scontrol", "sacct", "scancel", "squeue")
    vanished_reason = "unknown to Slurm"
    timeout = 30.0
    # a job between the queue and the accounting record is not gone yet
    vanish_after = 120.0

    def __init__(
        self,
        *,
        partition: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        constraint: str | None = None,
        gpu_flag: str = "--gres=gpu:{n}",
        request_disk: bool = False,
        **options: Unpack[ScriptOptions],
    ) -> None:
        super().__init__(**options)
        self.partition, self.account, self.qos, self.constraint = (
            partition,
            account,
            qos,
            constraint,
        )
        self.gpu_flag = gpu_flag
        # --tmp only works where nodes declare TmpDisk; many do not, so it is opt-in
        self.request_disk = request_disk

    def directives(self, request: JobRequest) -> list[str]:
        """The ``#SBATCH`` options of a request, before ``skip`` and ``extra``."""
        r = request
        lines = [
            f"--job-name={job_name(r)}",
            f"--chdir={r.workdir}",
            f"--output={r.stdout}",
            f"--error={r.stderr}",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={r.cpu}",
            f"--mem={mebibytes(r.memory)}M",
            f"--time={hms(minutes(r.walltime) / 60)}",  # Slurm counts whole minutes
        ]
        if self.request_disk and r.disk > 0:
            lines.append(f"--tmp={mebibytes(r.disk)}M")
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
        return lines

    def submit_one(self, request: JobRequest, script: Path) -> str:
        """``sbatch --parsable``; the job id is what it prints before any ``;cluster``."""
        return self._submitted_id("sbatch", ["--parsable", str(script)], _ID)

    def lookup(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """One ``scontrol`` for all; ``sacct`` once for those the controller forgot."""
        known = parse_scontrol(self._run("scontrol", ["show", "job", "-o"]).stdout)
        found = {i: known[i] for i in ids if i in known}
        missing = [i for i in ids if i not in found and i.isdigit()]
        if missing:
            args = ["-c", "-P", "-n", "-o", "JobID,State,ExitCode", "-j", ",".join(missing)]
            try:
                text = self._run("sacct", args).stdout
            except BatchCommandError as exc:
                log.debug("sacct cannot help: %s", exc)
            else:
                found.update({k: v for k, v in parse_sacct(text).items() if k in missing})
        return found

    def cancel(self, ids: Sequence[str]) -> None:
        """``scancel`` (ids that cannot be Slurm's are skipped; ended jobs are ignored)."""
        numeric = [i for i in ids if i.isdigit()]
        if not numeric:
            return
        try:
            self._run("scancel", numeric)
        except BatchCommandError as exc:
            if "Invalid job id" not in exc.stderr:
                raise

    def list_ours(self) -> list[str]:
        """Our ``frazil-`` jobs in ``squeue`` (which lists unfinished jobs only)."""
        user = os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
        text = self._run("squeue", ["-h", "-u", user, "-o", "%i|%j"]).stdout
        return [
            job_id
            for job_id, _, name in (line.partition("|") for line in text.splitlines())
            if name.startswith(JOB_NAME_PREFIX) and job_id
        ]
