"""The batch jobs a site remembers, one record type per execution mode.

A single-task pilot runs one claimed attempt (``TaskJob``); a batch-side DAG submits a whole
job at once, its roots claimed (``TaskJob``) and the rest reserved, claimed by their pilots
when they start (``ReservedJob``); a multi-task pilot runs whatever the server hands it
(``PilotJob``). Each record is written to the site's state file as a JSON object with its
``kind``; ``from_running`` reads the one record type that daemons before the split wrote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class _BatchJob:
    """What every batch job of the site has: its id, its directory, when it was submitted."""

    batch_id: str
    workdir: str
    submitted_at: float


@dataclass(frozen=True)
class TaskJob(_BatchJob):
    """A batch job whose pilot runs one claimed attempt of a task and reports on it."""

    kind: ClassVar[str] = "task"

    task_id: int
    attempt: int


@dataclass(frozen=True)
class ReservedJob(_BatchJob):
    """A batch-side DAG task's batch job: its pilot claims the task with its reservation once
    the batch system starts it (after its parents ended well)."""

    kind: ClassVar[str] = "reserved"

    task_id: int


@dataclass(frozen=True)
class PilotJob(_BatchJob):
    """A multi-task pilot's batch job: the pilot takes tasks from the server until idle."""

    kind: ClassVar[str] = "pilot"

    pilot_id: int


Job = TaskJob | ReservedJob | PilotJob
_KINDS: dict[str, type[Job]] = {cls.kind: cls for cls in (TaskJob, ReservedJob, PilotJob)}


def to_json(job: Job) -> dict[str, Any]:
    """A record as its state file keeps it."""
    return {"kind": job.kind, **asdict(job)}


def from_json(data: dict[str, Any]) -> Job:
    """A record from its state file's object."""
    fields = dict(data)
    cls = _KINDS[fields.pop("kind")]
    return cls(**fields)


def from_running(data: dict[str, Any]) -> Job:
    """A record of the one type that earlier daemons kept (``Running``: ``pilot_id`` set for
    a multi-task pilot, ``reserved`` for a batch-side DAG's reserved task, else one attempt),
    so that a site upgraded while its batch jobs run still knows them."""
    common = (str(data["batch_id"]), str(data["workdir"]), float(data["submitted_at"]))
    if data.get("pilot_id"):
        return PilotJob(*common, pilot_id=int(data["pilot_id"]))
    if data.get("reserved"):
        return ReservedJob(*common, task_id=int(data["task_id"]))
    return TaskJob(*common, task_id=int(data["task_id"]), attempt=int(data["attempt"]))
