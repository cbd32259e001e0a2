"""What a site offers and what it is handed: slots, claims, whole jobs, pilots."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from frazil.wire.checks import MAX_COUNT, STRICT, amount, bad, count, length


@dataclass(frozen=True, kw_only=True)
class Slot:
    """What one slot of a site offers a task (or a multi-task pilot's batch job offers all
    the tasks it runs, together): a task fits when every requirement does."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT

    cpu: int = 1
    gpu: int = 0
    memory: float = 2.0  # GB
    disk: float = 10.0  # GB
    time: float = 24.0  # hours of walltime
    os: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not 1 <= self.cpu <= MAX_COUNT:
            raise bad(name, "cpu", self.cpu, f"between 1 and {MAX_COUNT:,}")
        count(name, "gpu", self.gpu)
        amount(name, "memory", self.memory)
        amount(name, "disk", self.disk)
        amount(name, "time", self.time)
        length(name, "os", self.os, 255)

    def slot(self) -> Slot:
        """The slot alone (without what a subclass adds)."""
        return Slot(
            cpu=self.cpu, gpu=self.gpu, memory=self.memory, disk=self.disk, time=self.time,
            os=self.os, attributes=self.attributes,
        )  # fmt: skip


def slot_fields(slot: Slot) -> dict[str, Any]:
    """A slot's own fields by name (to build a shape that extends ``Slot`` from it)."""
    return {f.name: getattr(slot, f.name) for f in dataclasses.fields(Slot)}


@dataclass(frozen=True, kw_only=True)
class SiteInfo(Slot):
    """A site registering: what its slots offer, its ``$system()`` values, and about itself."""

    system: Mapping[str, Any] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ClaimRequest(Slot):
    """Up to ``limit`` tasks (or whole jobs) that fit one slot. A claim's repeat with the same
    ``request_id`` gets the same tasks (see ``request_id`` in the client)."""

    limit: int = 1
    request_id: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.limit <= 10_000:
            raise bad("ClaimRequest", "limit", self.limit, "between 1 and 10,000")
        check_request_id(self.request_id)


def check_request_id(value: str | None) -> None:
    """A request id is ``secrets.token_urlsafe(32)``: 32 to 64 URL-safe characters."""
    if value is None:
        return
    if not 32 <= len(value) <= 64 or not all(c.isascii() and (c.isalnum() or c in "-_")
                                            for c in value):  # fmt: skip
        raise ValueError("a request id is 32 to 64 characters of A-Z, a-z, 0-9, - and _")


@dataclass(frozen=True)
class Claim:
    """A task handed to a site: what it needs, and the passkey its pilot reports with."""

    task_id: int
    attempt: int
    passkey: str
    dataset_id: int
    job_index: int
    task_index: int
    name: str
    cpu: int
    gpu: int
    memory: float
    disk: float
    time: float


@dataclass(frozen=True)
class DagTask:
    """One task of a job claimed whole (batch-side DAG): either claimed now (a root, with
    ``attempt`` and ``passkey``) or reserved (``reservation``: the key its pilot claims it with
    once its dependencies are complete)."""

    task_id: int
    task_index: int
    name: str
    parents: tuple[int, ...]  # task ids within the job
    cpu: int
    gpu: int
    memory: float
    disk: float
    time: float
    attempt: int = 0
    passkey: str = ""
    reservation: str = ""

    def claim(self, dataset_id: int, job_index: int) -> Claim:
        """This task as a single claim (a reserved one has attempt 0 and no passkey)."""
        return Claim(
            self.task_id, self.attempt, self.passkey, dataset_id, job_index, self.task_index,
            self.name, self.cpu, self.gpu, self.memory, self.disk, self.time,
        )  # fmt: skip


@dataclass(frozen=True)
class JobClaim:
    """A whole job handed to a site, its tasks in an order that respects dependencies."""

    dataset_id: int
    job_index: int
    tasks: tuple[DagTask, ...]


@dataclass(frozen=True)
class AttemptKey:
    """One attempt of one task, and the passkey that speaks for it."""

    task_id: int
    attempt: int
    passkey: str


@dataclass(frozen=True)
class NewPilot:
    """A multi-task pilot the site created: its id and its key (shown only once)."""

    pilot_id: int
    key: str
