"""The resolved task a pilot runs, and a task handed to a multi-task pilot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from frazil.wire.claims import AttemptKey


@dataclass(frozen=True)
class Requirements:
    """A task's needs, with numbers that a site can compare."""

    cpu: int
    gpu: int
    memory: float
    disk: float
    time: float
    os: tuple[str, ...] = ()
    site: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Data:
    """A file a task reads or writes: where it lives (``remote``) and its name in the task's
    directory (``local``); ``checksum`` (``sha256:...``) and ``size`` are known for inputs
    that an earlier task of the dataset wrote."""

    remote: str
    local: str
    type: str  # permanent, job_temp, dataset_temp, site_temp
    movement: str  # input, output, both
    transfer: bool | str  # True, False or "maybe"
    checksum: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Module:
    """One module, ready to run: a program with its argv, or a Python class with parameters."""

    name: str
    src: str
    class_: str
    url: str
    argv: tuple[str, ...]
    env_shell: str
    env_clear: bool
    configs: Mapping[str, Any]
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class Tray:
    """One iteration of a tray."""

    name: str
    iteration: int
    env: tuple[str, str] | None
    modules: tuple[Module, ...]


@dataclass(frozen=True)
class TaskSpec:
    """Everything a pilot needs to run one task of one job; the server adds which attempt of
    which task under which config version it is (0 before it is stored with an attempt)."""

    job: int
    index: int
    name: str
    depends: tuple[str, ...]
    requirements: Requirements
    data: tuple[Data, ...]
    batchsys: Mapping[str, Any]
    container: str
    trays: tuple[Tray, ...]
    task_id: int = 0
    attempt: int = 0
    dataset: int = 0
    config_version: int = 0


@dataclass(frozen=True)
class Handed:
    """A task handed to a multi-task pilot, already started: its attempt, passkey and spec."""

    task_id: int
    attempt: int
    passkey: str
    spec: TaskSpec

    @property
    def key(self) -> AttemptKey:
        """The attempt and its passkey."""
        return AttemptKey(self.task_id, self.attempt, self.passkey)


def handed_json(key: AttemptKey, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A ``Handed`` as the server sends it, its spec the JSON stored with the attempt (made
    from a ``TaskSpec`` when it was resolved, so it is not decoded again on the way out)."""
    return {"task_id": key.task_id, "attempt": key.attempt, "passkey": key.passkey,
            "spec": spec}  # fmt: skip
