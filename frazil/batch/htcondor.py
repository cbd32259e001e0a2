"""The ``htcondor`` batch plugin: one job cluster per request, driven by the HTCondor CLI.

Not live-tested: no HTCondor pool runs on the test machines. Its submit descriptions are
parsed by the real ``htcondor2`` bindings in the tests, and its status parsing is tested on
recorded ``condor_q -json`` / ``condor_history -json`` output (``tests/data/batch/htcondor``).

* ``submit`` writes ``<workdir>/<name>.sub`` and runs ``condor_submit -terse`` on it; the
  batch id is the cluster id (each cluster holds one job, proc 0).
* ``status`` asks ``condor_q`` once for all ids, then ``condor_history`` once for the ids the
  queue no longer holds; an id neither knows is ``VANISHED``.
* Walltime: the job carries ``+MaxWallTimeMins`` and a ``periodic_remove`` expression that
  names it, so a removal whose ``RemoveReason`` quotes that expression is ``TIMEOUT``.
* ``cancel`` is ``condor_rm``; ``clean_queue`` lists our own queue's jobs whose
  ``JobBatchName`` starts with ``frazil-``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack

from frazil.batch.base import ENDED_STATES, BatchState, BatchStatus, JobRequest, native_state
from frazil.batch.directives import mebibytes, minutes
from frazil.batch.run import CommandResult
from frazil.batch.script import (
    JOB_NAME_PREFIX,
    ScriptOptions,
    ScriptPlugin,
    command_table,
    job_name,
)
from frazil.errors import BatchCommandError, BatchError

log = logging.getLogger(__name__)

#: HTCondor's ``JobStatus`` codes, by the names its manual gives them.
STATUS_NAMES = {
    1: "Idle",
    2: "Running",
    3: "Removed",
    4: "Completed",
    5: "Held",
    6: "Transferring Output",
    7: "Suspended",
}
#: ``JobStatus`` names mapped to the shared states (refined by exit code and remove reason).
NATIVE_STATES = {
    "Idle": BatchState.PENDING,
    "Running": BatchState.RUNNING,
    "Removed": BatchState.CANCELLED,
    "Completed": BatchState.COMPLETED,
    "Held": BatchState.HELD,
    "Transferring Output": BatchState.RUNNING,  # the command ended; its files are on the way
    "Suspended": BatchState.HELD,  # stopped on its machine until the startd resumes it
}
#: The attributes ``status`` asks for (``-attributes`` keeps the answer small).
ATTRIBUTES = (
    "ClusterId",
    "ProcId",
    "JobStatus",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "HoldReason",
    "RemoveReason",
    "JobBatchName",
    "DAGManJobId",
    "DAGNodeName",
)
#: The walltime attribute; the remove expression names it so that its removals are recognised.
WALLTIME_ATTRIBUTE = "MaxWallTimeMins"
WALLTIME_REMOVE = f"(JobStatus == 2) && (time() - JobCurrentStartDate > {WALLTIME_ATTRIBUTE} * 60)"
#: Which of our queue's jobs ``clean_queue`` considers (condor_q lists only our own jobs).
ORPHAN_CONSTRAINT = f'(JobBatchName =!= undefined) && regexp("^{JOB_NAME_PREFIX}", JobBatchName)'
_TERSE_ID = re.compile(r"^\s*(\d+)\.(\d+)\s*-\s*(\d+)\.(\d+)\s*$", re.MULTILINE)
_CLUSTER_ID = re.compile(r"[1-9][0-9]{0,17}")
_NODE_ID = re.compile(r"[1-9][0-9]{0,17}:[A-Za-z0-9_.-]+")
_DAG_SUBMITTED = re.compile(r"submitted to cluster (\d+)")
# condor_rm on a cluster that has left the queue: nothing left to do.
_RM_UNKNOWN = re.compile(r"Couldn't find/remove all jobs|not found", re.IGNORECASE)


class HTCondorPlugin(ScriptPlugin):
    """Submit each request as a one-job HTCondor cluster.

    ``schedd`` and ``pool`` select a non-default schedd (``-name``/``-pool`` on every
    command); ``account`` becomes ``accounting_group``; ``condor_submit`` and the other
    ``condor_*`` options are the commands' paths. The other options are those of every script
    plugin (``ScriptPlugin``); ``extra`` and ``skip`` change the submit description's lines.
    """

    name = "htcondor"
    runs_dags = True
    variants = ("dag",)
    script_suffix = ".sub"
    default_commands = command_table(
        "condor_submit", "condor_q", "condor_history", "condor_rm", "condor_submit_dag"
    )
    vanished_reason = "in neither queue nor history"

    def __init__(
        self,
        *,
        schedd: str | None = None,
        pool: str | None = None,
        account: str | None = None,
        condor_submit: str | None = None,
        condor_q: str | None = None,
        condor_history: str | None = None,
        condor_rm: str | None = None,
        condor_submit_dag: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        super().__init__(**options)
        self.schedd, self.pool, self.account = schedd, pool, account
        self._set_paths(
            condor_submit=condor_submit,
            condor_q=condor_q,
            condor_history=condor_history,
            condor_rm=condor_rm,
            condor_submit_dag=condor_submit_dag,
        )

    def directives(self, request: JobRequest) -> list[str]:
        """The default lines of ``request``'s submit description, before skip and extra."""
        return description_lines(request, account=self.account)

    def render_script(self, request: JobRequest) -> str:
        """The submit description: the header lines, then ``queue 1``."""
        return "\n".join([*self.header(request), "queue 1"]) + "\n"

    def submit_description(self, request: JobRequest) -> str:
        """The submit description for ``request``, as text (what ``write_script`` writes)."""
        return self.render_script(request)

    def submit_one(self, request: JobRequest, script: Path) -> str:
        """``condor_submit -terse`` from the workdir; the batch id is the cluster id."""
        return parse_submit(
            self._run("condor_submit", ["-terse", str(script)], cwd=request.workdir).stdout
        )

    def lookup(self, ids: Sequence[str]) -> dict[str, BatchStatus]:
        """Ask ``condor_q``, then ``condor_history`` for the clusters the queue lacks.

        DAG node ids (``DAGCLUSTER:NODE``) are found by ``DAGManJobId`` and ``DAGNodeName``.
        """
        nodes = [i for i in ids if _NODE_ID.fullmatch(i)]
        found = self._node_status(nodes) if nodes else {}
        clusters = sorted({i for i in ids if _CLUSTER_ID.fullmatch(i)}, key=int)
        if clusters:
            found.update(parse_status(self._query("condor_q", clusters)))
        missing = [c for c in clusters if c not in found]
        if missing:
            history = self._query("condor_history", missing, "-match", str(len(missing)))
            found = {**parse_status(history), **found}
        return found

    def cancel(self, ids: Sequence[str]) -> None:
        """``condor_rm`` the clusters; ignore ids the schedd no longer holds.

        Cancelling a DAG node removes its whole DAG (DAGMan and every node of the job).
        """
        ids = sorted({i.split(":", 1)[0] if _NODE_ID.fullmatch(i) else i for i in ids})
        clusters = [i for i in ids if _CLUSTER_ID.fullmatch(i)]
        if not clusters:
            return
        try:
            self._run("condor_rm", clusters)
        except BatchCommandError as exc:
            if exc.returncode is None or not _RM_UNKNOWN.search(exc.stderr + exc.stdout):
                raise
            log.info("htcondor: condor_rm: some of %s were not in the queue", clusters)

    def list_ours(self) -> list[str]:
        """Our queued ``frazil-`` clusters (``condor_q`` lists the user's own jobs)."""
        listed = parse_status(self._run("condor_q", self._query_args(ORPHAN_CONSTRAINT)).stdout)
        return sorted((i for i, s in listed.items() if s.state not in ENDED_STATES), key=int)

    # -- DAGMan -------------------------------------------------------------------------------

    def dag_file(self, requests: Sequence[JobRequest], parents: Sequence[Sequence[int]]) -> str:
        """The DAGMan input file of one job: a JOB line per node, PARENT/CHILD lines."""
        names = [r.name for r in requests]
        if len(set(names)) != len(names):
            raise BatchError("htcondor: DAG node names (request names) must be unique")
        lines = [f"JOB {r.name} {self.write_script(r)} DIR {r.workdir}" for r in requests]
        for child, mine in enumerate(parents):
            if mine:
                lines.append(f"PARENT {' '.join(names[p] for p in mine)} CHILD {names[child]}")
        return "\n".join(lines) + "\n"

    def submit_dag(
        self, requests: Sequence[JobRequest], parents: Sequence[Sequence[int]]
    ) -> list[str]:
        """Write a DAGMan file and ``condor_submit_dag`` it; ids are ``DAGCLUSTER:NODE``."""
        if any(r.after for r in requests):
            raise BatchError("htcondor: a DAG's nodes wait for each other, not for job ids")
        folder = Path(requests[0].workdir).parent
        path = folder / f"{requests[0].name}.dag"
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(self.dag_file(requests, parents))
        args = ["-force", "-batch-name", requests[0].name, str(path)]
        result = self._run("condor_submit_dag", args, cwd=folder)
        match = _DAG_SUBMITTED.search(result.stdout)
        if match is None:
            raise BatchCommandError(
                result.argv, result.returncode, result.stdout, result.stderr,
                "condor_submit_dag printed no cluster",
            )  # fmt: skip
        return [f"{match.group(1)}:{r.name}" for r in requests]

    def _node_status(self, nodes: Sequence[str]) -> dict[str, BatchStatus]:
        dags = sorted({n.split(":", 1)[0] for n in nodes}, key=int)
        constraint = " || ".join(f"DAGManJobId == {d}" for d in dags)
        ads = self._run("condor_q", self._query_args(constraint)).stdout
        ads_done = self._run("condor_history", self._query_args(constraint)).stdout
        found = {**parse_nodes(ads_done), **parse_nodes(ads)}
        alive = {d for d, s in self.lookup(dags).items() if s.state not in ENDED_STATES}
        out = {}
        for n in nodes:
            dag = n.split(":", 1)[0]
            if n in found:
                out[n] = BatchStatus(n, found[n].state, found[n].native, found[n].exit_code,
                                     found[n].reason)  # fmt: skip
            elif dag in alive:
                out[n] = BatchStatus(n, BatchState.PENDING, "not submitted by DAGMan yet")
            else:
                out[n] = BatchStatus(n, BatchState.CANCELLED, "never submitted",
                                     reason="the DAG ended before this node ran")  # fmt: skip
        return out

    # -- commands ---------------------------------------------------------------------------

    def _query(self, command: str, clusters: Sequence[str], *more: str) -> str:
        return self._run(command, [*self._query_args(ids_constraint(clusters)), *more]).stdout

    @staticmethod
    def _query_args(constraint: str) -> list[str]:
        return ["-json", "-attributes", ",".join(ATTRIBUTES), "-constraint", constraint]

    def _run(self, command: str, args: Sequence[str], **options: Any) -> CommandResult:
        schedd = ["-name", self.schedd] if self.schedd else []
        pool = ["-pool", self.pool] if self.pool else []
        return super()._run(command, [*schedd, *pool, *args], **options)


def ids_constraint(clusters: Sequence[str]) -> str:
    """A ClassAd constraint matching the job ads of these clusters."""
    return "member(ClusterId, {" + ", ".join(clusters) + "})"


# -- the submit description ---------------------------------------------------------------


def description_lines(request: JobRequest, account: str | None = None) -> list[str]:
    """The default lines of ``request``'s submit description (before skip, extra, ``queue``).

    Memory is in MB and disk in KB, as ``request_memory`` / ``request_disk`` take them; a
    relative ``argv[0]`` runs through ``/usr/bin/env`` so that the worker's PATH finds it.
    """
    argv = list(request.argv)
    if not argv[0].startswith("/"):
        argv.insert(0, "/usr/bin/env")
    defaults = [
        f"# frazil job {request.name}: cpu={request.cpu} gpu={request.gpu} "
        f"memory={request.memory:g}GB disk={request.disk:g}GB walltime={request.walltime:g}h",
        "universe = vanilla",
        f"batch_name = {job_name(request)}",
        f"executable = {_value(argv[0])}",
        f"arguments = {quote_arguments(argv[1:])}",
        "transfer_executable = false",
        f"initialdir = {_value(str(request.workdir))}",
        f"output = {_value(str(request.stdout))}",
        f"error = {_value(str(request.stderr))}",
        f"log = {_value(str(request.workdir / f'{request.name}.log'))}",
        f"request_cpus = {request.cpu}",
        f"request_memory = {mebibytes(request.memory)}",
        f"request_disk = {mebibytes(request.disk) * 1024}",
    ]
    if request.gpu:
        defaults.append(f"request_gpus = {request.gpu}")
    defaults += [
        f"+{WALLTIME_ATTRIBUTE} = {minutes(request.walltime)}",
        f"periodic_remove = {WALLTIME_REMOVE}",
    ]
    if request.env:
        defaults.append(f"environment = {quote_environment(request.env)}")
    if account:
        defaults.append(f"accounting_group = {_value(account)}")
    return defaults


def quote_arguments(args: Sequence[str]) -> str:
    """``args`` in HTCondor's "new" arguments syntax: every argument single-quoted.

    Inside the double-quoted whole, ``"`` is doubled; inside an argument's single quotes,
    ``'`` is doubled; ``$`` becomes ``$(DOLLAR)`` so that no macro expands.
    """
    return '"' + " ".join(_quote_item(arg) for arg in args) + '"'


def quote_environment(env: Mapping[str, str]) -> str:
    """``env`` in the "new" environment syntax: ``"'NAME=value' ..."``, quoted as arguments."""
    return '"' + " ".join(_quote_item(f"{k}={v}") for k, v in env.items()) + '"'


def _quote_item(text: str) -> str:
    return "'" + _escape(text).replace('"', '""').replace("'", "''") + "'"


def _value(text: str) -> str:
    """A bare value for one submit line (a path, a name), with ``$`` escaped."""
    if text.endswith("\\"):
        raise BatchError(f"htcondor: {text!r} ends with a backslash (a line continuation)")
    return _escape(text)


def _escape(text: str) -> str:
    """``text`` with ``$`` escaped as ``$(DOLLAR)``; refuses what a submit line cannot hold."""
    if any(c in text for c in "\r\n\0"):
        raise BatchError(f"htcondor: {text!r} cannot be written on one submit line")
    if "$$" in text:
        # $$(attr) is expanded again when the job matches a machine; refuse rather than guess.
        raise BatchError(f"htcondor: {text!r} contains '$$', which HTCondor would expand")
    return text.replace("$", "$(DOLLAR)")


# -- parsing --------------------------------------------------------------------------------


def parse_submit(stdout: str) -> str:
    """The cluster id from ``condor_submit -terse`` output (``123.0 - 123.0``)."""
    match = _TERSE_ID.search(stdout)
    if match is None or match.group(1) != match.group(3):
        raise BatchError(f"htcondor: no single cluster id in condor_submit output {stdout!r}")
    return match.group(1)


def parse_status(text: str) -> dict[str, BatchStatus]:
    """Map ``condor_q -json`` or ``condor_history -json`` output to statuses by cluster id.

    Empty output (no job matched) is an empty dict; output that is not a JSON list of job ads
    raises ``BatchError``.
    """
    if not text.strip():
        return {}
    try:
        ads = json.loads(text)
    except ValueError as exc:
        raise BatchError(f"htcondor: unreadable JSON from condor_q/history: {exc}") from exc
    if not isinstance(ads, list):
        raise BatchError(f"htcondor: expected a JSON list of job ads, got {type(ads).__name__}")
    statuses = {}
    for ad in ads:
        if isinstance(ad, dict) and isinstance(ad.get("ClusterId"), int):
            status = _status(ad)
            statuses[status.id] = status
    return statuses


def parse_nodes(text: str) -> dict[str, BatchStatus]:
    """Statuses of DAG node jobs from ``condor_q``/``condor_history -json``, by ``DAG:NODE``."""
    if not text.strip():
        return {}
    try:
        ads = json.loads(text)
    except ValueError as exc:
        raise BatchError(f"htcondor: unreadable JSON from condor_q/history: {exc}") from exc
    out = {}
    for ad in ads if isinstance(ads, list) else []:
        if (
            isinstance(ad, dict)
            and ad.get("DAGNodeName")
            and isinstance(ad.get("DAGManJobId"), int)
        ):
            node = f"{ad['DAGManJobId']}:{ad['DAGNodeName']}"
            status = _status(ad)
            out[node] = BatchStatus(
                node, status.state, status.native, status.exit_code, status.reason
            )
    return out


def _status(ad: Mapping[str, Any]) -> BatchStatus:
    job_id = str(ad["ClusterId"])
    code = ad.get("JobStatus")
    native = STATUS_NAMES.get(code, f"JobStatus {code}") if isinstance(code, int) else "?"
    state = native_state("htcondor", NATIVE_STATES, native)
    if state is BatchState.COMPLETED:
        return _exited(job_id, native, ad)
    if state is BatchState.CANCELLED:
        reason = _text(ad.get("RemoveReason"))
        if WALLTIME_ATTRIBUTE in reason and "PeriodicRemove" in reason:
            return BatchStatus(job_id, BatchState.TIMEOUT, native, None, reason)
        return BatchStatus(job_id, state, native, None, reason)
    reason = _text(ad.get("HoldReason")) if native == "Held" else ""
    return BatchStatus(job_id, state, native, None, reason)


def _exited(job_id: str, native: str, ad: Mapping[str, Any]) -> BatchStatus:
    signal, code = ad.get("ExitSignal"), ad.get("ExitCode")
    if ad.get("ExitBySignal") is True and isinstance(signal, int):
        return BatchStatus(job_id, BatchState.FAILED, native, 128 + signal, f"signal {signal}")
    if not isinstance(code, int):
        return BatchStatus(job_id, BatchState.FAILED, native, None, "completed without ExitCode")
    state = BatchState.COMPLETED if code == 0 else BatchState.FAILED
    return BatchStatus(job_id, state, native, code, "")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
