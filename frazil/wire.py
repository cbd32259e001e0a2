"""What crosses the network between the server, its sites, their pilots and the client.

Every shape is named once, here, as a frozen standard-library dataclass: the pilot imports
nothing but the standard library and httpx, and it speaks these. The server's routes take
them as request bodies (pydantic validates JSON into the dataclasses themselves, with the
bounds each checks in ``__post_init__``); the client decodes answers into them with
``decode``; the site daemon and the pilots read attributes, never string keys, so renaming a
field breaks the type check instead of a pilot at run time.

``PROTOCOL`` is the version of this format. Every request of the client carries it in the
``Frazil-Protocol`` header and every answer of the server names its own: a server refuses a
caller whose version it cannot serve (426, naming both), and a caller refuses a server older
than itself, so a pilot or site of another release fails at its first call with a message
that says what to upgrade, never halfway through a task. A request without the header (a
person with curl) is served as the current version.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

#: The version of the wire format that this release speaks.
PROTOCOL = 1
#: The oldest version a server of this release still serves.
OLDEST_PROTOCOL = 1
#: The header that carries the version, on requests and answers.
PROTOCOL_HEADER = "Frazil-Protocol"

#: Resources a slot or a task may name, at most (cores and GPUs; GB and hours).
MAX_COUNT = 1_000_000
MAX_AMOUNT = 1e9
#: The request body settings (pydantic's) that every shape here is read with.
_STRICT: dict[str, Any] = {"extra": "forbid", "allow_inf_nan": False}

#: Resources an attempt can run out of (``Failure.exhausted``).
RESOURCES = ("memory", "disk", "time")
#: How a report ends an attempt, or that it only carries logs.
REPORT_KINDS = ("finish", "fail", "log")
#: What the server answers for each report of an exchange, and each batched heartbeat.
REPORT_RESULTS = ("ok", "stale", "denied", "refused")


def _bad(shape: str, name: str, value: object, rule: str) -> ValueError:
    return ValueError(f"{shape}.{name} must be {rule}, not {value!r}")


def _count(shape: str, name: str, value: int) -> None:
    if not 0 <= value <= MAX_COUNT:
        raise _bad(shape, name, value, f"between 0 and {MAX_COUNT:,}")


def _amount(shape: str, name: str, value: float) -> None:
    if not (0 < value <= MAX_AMOUNT) or math.isnan(value):
        raise _bad(shape, name, value, f"above 0 and at most {MAX_AMOUNT:g}")


def _length(shape: str, name: str, value: str | None, most: int, least: int = 0) -> None:
    if value is not None and not least <= len(value) <= most:
        raise _bad(shape, name, f"{value[:40]}..." if len(value) > 40 else value,
                   f"{least} to {most} characters long")  # fmt: skip


def _at_most(shape: str, name: str, items: typing.Sized, most: int) -> None:
    if len(items) > most:
        raise ValueError(f"{shape}.{name} holds at most {most:,} items, not {len(items):,}")


def _check_exhausted(shape: str, exhausted: typing.Iterable[str]) -> None:
    unknown = sorted(set(exhausted) - set(RESOURCES))
    if unknown:
        raise ValueError(
            f"{shape}.exhausted: unknown resources {unknown}; known: {', '.join(RESOURCES)}"
        )


# -- slots and claims -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Slot:
    """What one slot of a site offers a task (or a multi-task pilot's batch job offers all
    the tasks it runs, together): a task fits when every requirement does."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

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
            raise _bad(name, "cpu", self.cpu, f"between 1 and {MAX_COUNT:,}")
        _count(name, "gpu", self.gpu)
        _amount(name, "memory", self.memory)
        _amount(name, "disk", self.disk)
        _amount(name, "time", self.time)
        _length(name, "os", self.os, 255)

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
            raise _bad("ClaimRequest", "limit", self.limit, "between 1 and 10,000")
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


# -- the resolved task a pilot runs ------------------------------------------------------------


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


# -- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Resources an attempt used, as the pilot measured them."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    cpu_time: float | None = None  # seconds
    wall_time: float | None = None  # seconds
    max_memory: float | None = None  # GB
    max_disk: float | None = None  # GB

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and not value >= 0:
                raise _bad("Usage", f.name, value, "at least 0")


_FILE_TYPES = ("permanent", "job_temp", "dataset_temp", "site_temp")
_CHECKSUMS = ("sha256", "md5", "sha512", "adler32")


@dataclass(frozen=True)
class FileRecord:
    """A file an attempt read or wrote."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    url: str
    movement: str  # input, output, both
    type: str = "permanent"
    local: str = ""
    size: int | None = None
    checksum_type: str | None = None
    checksum: str | None = None

    def __post_init__(self) -> None:
        _length("FileRecord", "url", self.url, 4096)
        _length("FileRecord", "local", self.local, 255)
        _length("FileRecord", "checksum", self.checksum, 128)
        if self.movement not in ("input", "output", "both"):
            raise _bad("FileRecord", "movement", self.movement, "input, output or both")
        if self.type not in _FILE_TYPES:
            raise _bad("FileRecord", "type", self.type, " or ".join(_FILE_TYPES))
        if self.checksum_type is not None and self.checksum_type not in _CHECKSUMS:
            raise _bad("FileRecord", "checksum_type", self.checksum_type, " or ".join(_CHECKSUMS))
        if self.size is not None and self.size < 0:
            raise _bad("FileRecord", "size", self.size, "at least 0")


@dataclass(frozen=True)
class Finish:
    """An attempt succeeded: what it used, its statistics and the files it wrote."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    usage: Usage | None = None
    stats: Mapping[str, float] = field(default_factory=dict)
    files: tuple[FileRecord, ...] = ()


@dataclass(frozen=True)
class Failure:
    """An attempt failed, or was stopped from outside (``counts`` false: no failure is
    counted), or was stopped at its walltime (``timeout``); ``exhausted`` names the
    resources it ran out of (the next attempt asks for more)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    error: str
    usage: Usage | None = None
    exhausted: tuple[str, ...] = ()
    exit_code: int | None = None
    stats: Mapping[str, float] = field(default_factory=dict)
    counts: bool = True
    timeout: bool = False

    def __post_init__(self) -> None:
        _length("Failure", "error", self.error, 100_000)
        _check_exhausted("Failure", self.exhausted)


@dataclass(frozen=True)
class Report:
    """A multi-task pilot's word on one of its attempts: it finished, it failed (the fields
    of ``Failure``), or it only sends logs (name → the log's tail)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    kind: str
    task_id: int
    attempt: int
    passkey: str
    usage: Usage | None = None
    stats: Mapping[str, float] = field(default_factory=dict)
    files: tuple[FileRecord, ...] = ()
    error: str = ""
    exhausted: tuple[str, ...] = ()
    exit_code: int | None = None
    counts: bool = True
    timeout: bool = False
    logs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in REPORT_KINDS:
            raise _bad("Report", "kind", self.kind, " or ".join(REPORT_KINDS))
        if self.attempt < 1:
            raise _bad("Report", "attempt", self.attempt, "at least 1")
        _length("Report", "passkey", self.passkey, 200, 1)
        _length("Report", "error", self.error, 100_000)
        _at_most("Report", "files", self.files, 100_000)
        _at_most("Report", "logs", self.logs, 100)
        _check_exhausted("Report", self.exhausted)

    @classmethod
    def finished(cls, key: AttemptKey, done: Finish, logs: Mapping[str, str]) -> Report:
        """The report of a finished attempt."""
        return cls("finish", key.task_id, key.attempt, key.passkey, usage=done.usage,
                   stats=done.stats, files=done.files, logs=logs)  # fmt: skip

    @classmethod
    def failed(cls, key: AttemptKey, failure: Failure, logs: Mapping[str, str]) -> Report:
        """The report of a failed (or stopped) attempt."""
        return cls(
            "fail", key.task_id, key.attempt, key.passkey, usage=failure.usage,
            stats=failure.stats, error=failure.error, exhausted=failure.exhausted,
            exit_code=failure.exit_code, counts=failure.counts, timeout=failure.timeout,
            logs=logs,
        )  # fmt: skip

    @property
    def finish(self) -> Finish:
        """What a ``finish`` report says."""
        return Finish(self.usage, self.stats, self.files)

    @property
    def failure(self) -> Failure:
        """What a ``fail`` report says."""
        return Failure(self.error, self.usage, self.exhausted, self.exit_code, self.stats,
                       self.counts, self.timeout)  # fmt: skip


@dataclass(frozen=True)
class Beat:
    """One attempt's heartbeat (and the phase it is in), in a batch of them."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    task_id: int
    attempt: int
    passkey: str
    phase: str | None = None

    def __post_init__(self) -> None:
        if self.attempt < 1:
            raise _bad("Beat", "attempt", self.attempt, "at least 1")
        _length("Beat", "passkey", self.passkey, 200, 1)


@dataclass(frozen=True)
class Exchange:
    """A multi-task pilot's reports, and its request for up to ``limit`` more tasks (waiting
    up to ``wait`` seconds for one); ``time_left`` is the hours left of its walltime."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    reports: tuple[Report, ...] = ()
    limit: int = 0
    wait: float = 0.0
    time_left: float | None = None
    host: str = ""
    request_id: str | None = None

    def __post_init__(self) -> None:
        _at_most("Exchange", "reports", self.reports, 1000)
        if not 0 <= self.limit <= 10_000:
            raise _bad("Exchange", "limit", self.limit, "between 0 and 10,000")
        if not 0 <= self.wait <= 60:
            raise _bad("Exchange", "wait", self.wait, "between 0 and 60 seconds")
        if self.time_left is not None and not self.time_left >= 0:
            raise _bad("Exchange", "time_left", self.time_left, "at least 0")
        _length("Exchange", "host", self.host, 255)
        check_request_id(self.request_id)


@dataclass(frozen=True)
class ExchangeAnswer:
    """What the server did with each report (``REPORT_RESULTS``), and the tasks handed out."""

    results: tuple[str, ...]
    tasks: tuple[Handed, ...]


# -- what people read: datasets, jobs, tasks, attempts, logs, statistics, sites, quotas ---------


@dataclass(frozen=True)
class DatasetView:
    """One dataset as listed."""

    id: int
    alias: str | None
    description: str
    owner: str
    status: str
    priority: float
    jobs_submitted: int
    jobs_materialized: int
    jobs_complete: int
    jobs_failed: int
    tasks_per_job: int
    config_version: int
    debug: bool
    truncated: bool
    always_active: bool
    created_at: float


@dataclass(frozen=True)
class DatasetStatusView:
    """A dataset with its task counts per task name and state."""

    dataset: DatasetView
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # task name -> state -> n
    job_counts: dict[str, int] = field(default_factory=dict)  # job state -> n

    @property
    def progress(self) -> float:
        """Fraction of the submitted jobs that are complete."""
        n = self.dataset.jobs_submitted
        return self.dataset.jobs_complete / n if n else 0.0


@dataclass(frozen=True)
class JobView:
    """One job as listed."""

    dataset_id: int
    index: int
    status: str
    seed: int
    tasks: int
    complete: int
    failed: int
    failures: int
    status_changed: float


@dataclass(frozen=True)
class TaskView:
    """One task as listed."""

    id: int
    dataset_id: int
    job_index: int
    task_index: int
    name: str
    status: str
    failures: int
    attempts: int
    site: str | None
    phase: str | None
    cpu: int
    gpu: int
    memory: float
    disk: float
    time: float
    status_changed: float


@dataclass(frozen=True)
class AttemptView:
    """One attempt of a task."""

    number: int
    site: str
    host: str | None
    batch_id: str | None
    outcome: str
    phase: str | None
    claimed_at: float
    started_at: float | None
    ended_at: float | None
    exit_code: int | None
    cpu_time: float | None
    wall_time: float | None
    max_memory: float | None
    error: str | None
    config_version: int
    stats: dict[str, float]
    pilot_id: int | None = None  # the multi-task pilot that ran it


@dataclass(frozen=True)
class TaskDetail:
    """A task with its attempts."""

    task: TaskView
    attempts: list[AttemptView]
    depends_on: list[str]


@dataclass(frozen=True)
class LogView:
    """The kept tail of one log of one attempt."""

    attempt: int
    name: str
    text: str
    size: int
    created_at: float


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
class SiteView:
    """A registered site."""

    name: str
    resources: dict[str, Any]
    info: dict[str, Any]
    registered_at: float
    last_seen: float


@dataclass(frozen=True)
class Holdings:
    """What a submitter holds now."""

    jobs: int = 0
    tasks: int = 0


@dataclass(frozen=True)
class Quota:
    """A submitter's caps (their own where an administrator set them, else the defaults)."""

    submitter: str
    dataset_jobs: int
    dataset_tasks: int
    jobs: int
    tasks: int
    #: the caps an administrator set for this submitter (the others are the defaults)
    overridden: tuple[str, ...] = ()
    usage: Holdings = Holdings()


@dataclass(frozen=True)
class NewToken:
    """A token just made: its record and the token itself (shown only in this answer)."""

    id: int
    name: str
    role: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    token: str


@dataclass(frozen=True)
class Health:
    """The server answers (and the caller's token is valid)."""

    status: str
    version: str


# -- encoding and decoding --------------------------------------------------------------------

T = TypeVar("T")
_Convert = Callable[[Any], Any]
_DECODERS: dict[Any, _Convert] = {}


class WireError(ValueError):
    """JSON that does not have the shape it should (names the shape and the field)."""


def decode(shape: type[T], data: Any) -> T:
    """``data`` (parsed JSON) as a ``shape``: nested dataclasses, tuples and optional values
    are built from their type annotations; unknown keys are ignored (a newer server may add
    optional fields), a missing required one raises ``WireError`` naming it."""
    result: T = _decoder(shape)(data)
    return result


def _decoder(hint: Any) -> _Convert:
    known = _DECODERS.get(hint)
    if known is None:
        known = _DECODERS[hint] = _make_decoder(hint)
    return known


def _make_decoder(hint: Any) -> _Convert:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass_decoder(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            return lambda v: v  # bool | str and the like: JSON already says which
        convert = _decoder(present[0])
        return lambda v: None if v is None else convert(v)
    if origin is list:
        item = _decoder(args[0])
        return lambda v: [item(x) for x in v]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda v: tuple(item(x) for x in v)
        items = [_decoder(a) for a in args]
        return lambda v: tuple(f(x) for f, x in zip(items, v, strict=True))
    if hint is float:
        return float
    return lambda v: v


def _dataclass_decoder(cls: type[Any]) -> _Convert:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls)]
    required = {
        f.name for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }  # fmt: skip

    def convert(data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise WireError(f"{cls.__name__} must be an object, not {type(data).__name__}")
        missing = required - data.keys()
        if missing:
            raise WireError(f"{cls.__name__} lacks {', '.join(sorted(missing))}")
        try:
            return cls(**{name: f(data[name]) for name, f in fields if name in data})
        except (TypeError, ValueError) as exc:
            raise WireError(f"{cls.__name__} does not fit: {exc}") from exc

    return convert


def encode(value: Any) -> Any:
    """A dataclass (nested, with tuples and mappings) as JSON-ready data; faster than
    ``dataclasses.asdict``, which deep-copies every leaf."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {k: encode(v) for k, v in value.items()}
    return value
