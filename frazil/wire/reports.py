"""What pilots say about their attempts: finish, failure, logs, heartbeats, exchanges."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from frazil.wire.checks import REPORT_KINDS, STRICT, at_most, bad, check_exhausted, length
from frazil.wire.claims import AttemptKey, check_request_id
from frazil.wire.logs import LogAck, LogChunk
from frazil.wire.spec import Handed


@dataclass(frozen=True)
class Usage:
    """Resources an attempt used, as the pilot measured them."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT

    cpu_time: float | None = None  # seconds
    wall_time: float | None = None  # seconds
    max_memory: float | None = None  # GB
    max_disk: float | None = None  # GB

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and not value >= 0:
                raise bad("Usage", f.name, value, "at least 0")


_FILE_TYPES = ("permanent", "job_temp", "dataset_temp", "site_temp")
_CHECKSUMS = ("sha256", "md5", "sha512", "adler32")


@dataclass(frozen=True)
class FileRecord:
    """A file an attempt read or wrote."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT

    url: str
    movement: str  # input, output, both
    type: str = "permanent"
    local: str = ""
    size: int | None = None
    checksum_type: str | None = None
    checksum: str | None = None

    def __post_init__(self) -> None:
        length("FileRecord", "url", self.url, 4096)
        length("FileRecord", "local", self.local, 255)
        length("FileRecord", "checksum", self.checksum, 128)
        if self.movement not in ("input", "output", "both"):
            raise bad("FileRecord", "movement", self.movement, "input, output or both")
        if self.type not in _FILE_TYPES:
            raise bad("FileRecord", "type", self.type, " or ".join(_FILE_TYPES))
        if self.checksum_type is not None and self.checksum_type not in _CHECKSUMS:
            raise bad("FileRecord", "checksum_type", self.checksum_type, " or ".join(_CHECKSUMS))
        if self.size is not None and self.size < 0:
            raise bad("FileRecord", "size", self.size, "at least 0")


@dataclass(frozen=True)
class Finish:
    """An attempt succeeded: what it used, its statistics and the files it wrote."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT

    usage: Usage | None = None
    stats: Mapping[str, float] = field(default_factory=dict)
    files: tuple[FileRecord, ...] = ()


@dataclass(frozen=True)
class Failure:
    """An attempt failed, or was stopped from outside (``counts`` false: no failure is
    counted), or was stopped at its walltime (``timeout``); ``exhausted`` names the
    resources it ran out of (the next attempt asks for more)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT

    error: str
    usage: Usage | None = None
    exhausted: tuple[str, ...] = ()
    exit_code: int | None = None
    stats: Mapping[str, float] = field(default_factory=dict)
    counts: bool = True
    timeout: bool = False

    def __post_init__(self) -> None:
        length("Failure", "error", self.error, 100_000)
        check_exhausted("Failure", self.exhausted)


@dataclass(frozen=True)
class Report:
    """A multi-task pilot's word on one of its attempts: it finished, it failed (the fields
    of ``Failure``), or it only sends logs: ``chunks`` appended to them (``frazil.wire.logs``),
    or, from pilots of earlier releases, ``logs`` (name → the log's tail, replacing it)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT

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
    chunks: tuple[LogChunk, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in REPORT_KINDS:
            raise bad("Report", "kind", self.kind, " or ".join(REPORT_KINDS))
        if self.attempt < 1:
            raise bad("Report", "attempt", self.attempt, "at least 1")
        length("Report", "passkey", self.passkey, 200, 1)
        length("Report", "error", self.error, 100_000)
        at_most("Report", "files", self.files, 100_000)
        at_most("Report", "logs", self.logs, 100)
        at_most("Report", "chunks", self.chunks, 100)
        check_exhausted("Report", self.exhausted)

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

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT

    task_id: int
    attempt: int
    passkey: str
    phase: str | None = None

    def __post_init__(self) -> None:
        if self.attempt < 1:
            raise bad("Beat", "attempt", self.attempt, "at least 1")
        length("Beat", "passkey", self.passkey, 200, 1)


@dataclass(frozen=True)
class Exchange:
    """A multi-task pilot's reports, and its request for up to ``limit`` more tasks (waiting
    up to ``wait`` seconds for one); ``time_left`` is the hours left of its walltime."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT

    reports: tuple[Report, ...] = ()
    limit: int = 0
    wait: float = 0.0
    time_left: float | None = None
    host: str = ""
    request_id: str | None = None

    def __post_init__(self) -> None:
        at_most("Exchange", "reports", self.reports, 1000)
        if not 0 <= self.limit <= 10_000:
            raise bad("Exchange", "limit", self.limit, "between 0 and 10,000")
        if not 0 <= self.wait <= 60:
            raise bad("Exchange", "wait", self.wait, "between 0 and 60 seconds")
        if self.time_left is not None and not self.time_left >= 0:
            raise bad("Exchange", "time_left", self.time_left, "at least 0")
        length("Exchange", "host", self.host, 255)
        check_request_id(self.request_id)


@dataclass(frozen=True)
class ExchangeAnswer:
    """What the server did with each report (``REPORT_RESULTS``), the tasks handed out, and
    how much the server holds of each log that the reports' chunks appended to."""

    results: tuple[str, ...]
    tasks: tuple[Handed, ...]
    logs: tuple[LogAck, ...] = ()
