"""Records passed between the services and their callers (frozen, typed, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SiteResources:
    """What a site offers one task: a task fits when every requirement does."""

    name: str
    cpu: int = 1
    gpu: int = 0
    memory: float = 2.0  # GB
    disk: float = 10.0  # GB
    time: float = 24.0  # hours
    os: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


def attribute_matches(required: Any, offered: Any) -> bool:
    """Whether a site attribute satisfies a task's extra requirement.

    ``true`` asks for a truthy attribute, a list accepts any of its items, a number asks for
    at least that much, anything else must be equal.
    """
    if required is True:
        return bool(offered)
    if isinstance(required, list):
        return offered in required
    if isinstance(required, int | float) and not isinstance(required, bool):
        return (
            isinstance(offered, int | float)
            and not isinstance(offered, bool)
            and (offered >= required)
        )
    return bool(required == offered)


def extras_fit(required: Mapping[str, Any], site: SiteResources) -> bool:
    """Whether every extra requirement of a task is met by the site's attributes."""
    return all(
        key in site.attributes and attribute_matches(value, site.attributes[key])
        for key, value in required.items()
    )


@dataclass(frozen=True)
class Claim:
    """A task handed to a site: the pilot proves itself with ``passkey`` on every report."""

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
class Usage:
    """Resources an attempt used, as the pilot measured them."""

    cpu_time: float | None = None  # seconds
    wall_time: float | None = None  # seconds
    max_memory: float | None = None  # GB
    max_disk: float | None = None  # GB


@dataclass(frozen=True)
class FileRecord:
    """A file an attempt read or wrote."""

    url: str
    movement: str
    type: str = "permanent"
    local: str = ""
    size: int | None = None
    checksum_type: str | None = None
    checksum: str | None = None


@dataclass(frozen=True)
class StatSummary:
    """One statistic aggregated over attempts: count, sum, mean, standard deviation, range."""

    task_name: str
    name: str
    count: int
    total: float
    mean: float
    stddev: float
    minimum: float
    maximum: float


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


@dataclass(frozen=True)
class JobClaim:
    """A whole job handed to a site, its tasks in an order that respects dependencies."""

    dataset_id: int
    job_index: int
    tasks: tuple[DagTask, ...]
