"""Request bodies of the API (responses are the services' own records)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from frazil.model.limits import PRIORITY, SEED
from frazil.model.records import SiteResources
from frazil.model.states import LOST_OUTCOMES, AttemptOutcome, TaskPhase


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # JSON has no NaN or inf


class SubmitBody(_Body):
    """A dataset to submit: its config as an object or as YAML/JSON text."""

    config: dict[str, Any] | str
    jobs: int = Field(1, ge=0)
    alias: str | None = None
    description: str | None = None
    priority: float = Field(1.0, ge=PRIORITY.low, le=PRIORITY.high)
    seed: int | None = Field(None, ge=SEED.low, le=SEED.high)
    group: str = Field("", max_length=255)


class ScopeBody(_Body):
    """Which tasks of a dataset an action applies to."""

    job: int | None = Field(None, ge=0)
    task: str | None = None
    task_id: int | None = None
    reason: str = Field("", max_length=2000)


class PriorityBody(_Body):
    priority: float = Field(ge=PRIORITY.low, le=PRIORITY.high)


class JobsBody(_Body):
    jobs: int = Field(ge=0)


class ConfigBody(_Body):
    config: dict[str, Any] | str
    comment: str = Field("", max_length=2000)


class QuotaBody(_Body):
    """Caps of a submitter's quota; a cap left out stays, null goes back to the default."""

    dataset_jobs: int | None = Field(None, ge=0, le=10**12)
    dataset_tasks: int | None = Field(None, ge=0, le=10**12)
    jobs: int | None = Field(None, ge=0, le=10**12)
    tasks: int | None = Field(None, ge=0, le=10**12)


class TokenBody(_Body):
    name: str
    role: str


class SiteBody(_Body):
    """What one slot of a site offers, and what the site tells about itself."""

    cpu: int = Field(1, ge=1)
    gpu: int = Field(0, ge=0)
    memory: float = Field(2.0, gt=0)
    disk: float = Field(10.0, gt=0)
    time: float = Field(24.0, gt=0)
    os: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    system: dict[str, Any] = Field(default_factory=dict)
    info: dict[str, Any] = Field(default_factory=dict)


#: A request id (``secrets.token_urlsafe(32)``): a repeated request gets the first one's answer.
RequestId = Annotated[str | None, Field(pattern="^[A-Za-z0-9_-]{32,64}$")]


class ClaimBody(_Body):
    """Claim up to ``limit`` tasks that fit the resources of one slot (a claim's repeat, with
    the same ``request_id``, gets the same tasks)."""

    limit: int = Field(1, ge=1, le=10_000)
    cpu: int = Field(1, ge=1)
    gpu: int = Field(0, ge=0)
    memory: float = Field(2.0, gt=0)
    disk: float = Field(10.0, gt=0)
    time: float = Field(24.0, gt=0)
    os: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    request_id: RequestId = None


def slot(name: str, body: SiteBody | ClaimBody) -> SiteResources:
    """What one of site ``name``'s slots offers, as a request states it."""
    return SiteResources(
        name=name, cpu=body.cpu, gpu=body.gpu, memory=body.memory, disk=body.disk,
        time=body.time, os=body.os, attributes=body.attributes,
    )  # fmt: skip


class BatchIdBody(_Body):
    batch_id: str = Field(min_length=1, max_length=255)


def _lost(outcome: AttemptOutcome) -> AttemptOutcome:
    if outcome not in LOST_OUTCOMES:
        named = ", ".join(sorted(o.value for o in LOST_OUTCOMES))
        raise ValueError(f"a lost attempt's outcome is one of {named}, not {outcome.value!r}")
    return outcome


class LostBody(_Body):
    reason: str = Field(max_length=10_000)
    outcome: Annotated[AttemptOutcome, AfterValidator(_lost)] = AttemptOutcome.VANISHED
    counts: bool = True


class StartBody(_Body):
    host: str = Field("", max_length=255)


class HeartbeatBody(_Body):
    phase: TaskPhase | None = None


class UsageBody(_Body):
    cpu_time: float | None = Field(None, ge=0)
    wall_time: float | None = Field(None, ge=0)
    max_memory: float | None = Field(None, ge=0)
    max_disk: float | None = Field(None, ge=0)


class FileBody(_Body):
    url: str = Field(max_length=4096)
    movement: str = Field(pattern="^(input|output|both)$")
    type: str = Field("permanent", pattern="^(permanent|job_temp|dataset_temp|site_temp)$")
    local: str = Field("", max_length=255)
    size: int | None = Field(None, ge=0)
    checksum_type: str | None = Field(None, pattern="^(sha256|md5|sha512|adler32)$")
    checksum: str | None = Field(None, max_length=128)


class FinishBody(_Body):
    usage: UsageBody | None = None
    stats: dict[str, float] = Field(default_factory=dict)
    files: list[FileBody] = Field(default_factory=list, max_length=100_000)


class FailBody(_Body):
    error: str = Field(max_length=100_000)
    usage: UsageBody | None = None
    exhausted: list[Literal["memory", "disk", "time"]] = Field(default_factory=list, max_length=3)
    exit_code: int | None = None
    stats: dict[str, float] = Field(default_factory=dict)
    #: False when the batch system stopped the attempt (preemption): no failure is counted
    counts: bool = True
    #: True when the attempt was stopped at its walltime
    timeout: bool = False


class LogBody(_Body):
    """A log's text (only its tail is kept)."""

    text: str = Field(max_length=10_000_000)


class BeatBody(_Body):
    task_id: int
    attempt: int = Field(ge=1)
    passkey: str = Field(min_length=1, max_length=200)
    phase: TaskPhase | None = None


class BeatsBody(_Body):
    """Heartbeats of many attempts at once (a multi-task pilot's)."""

    beats: list[BeatBody] = Field(min_length=1, max_length=1000)


class AttemptRef(_Body):
    task_id: int
    attempt: int


class AttemptsBody(_Body):
    """A site's running attempts, to learn which are no longer current."""

    attempts: list[AttemptRef] = Field(max_length=100_000)


class KnownBody(_Body):
    """The tasks a site knows among its batch jobs (by id)."""

    known: list[int] = Field(default_factory=list, max_length=100_000)


class PilotBody(_Body):
    """What a multi-task pilot's batch job offers the tasks it runs, all together."""

    cpu: int = Field(1, ge=0, le=100_000)
    gpu: int = Field(0, ge=0, le=10_000)
    memory: float = Field(2.0, gt=0)
    disk: float = Field(10.0, gt=0)
    time: float = Field(24.0, gt=0)
    os: str | None = Field(None, max_length=255)
    attributes: dict[str, Any] = Field(default_factory=dict)


class ReportBody(_Body):
    """A multi-task pilot's word on one attempt: it finished, failed, or only sends logs."""

    kind: str = Field(pattern="^(finish|fail|log)$")
    task_id: int
    attempt: int = Field(ge=1)
    passkey: str = Field(min_length=1, max_length=200)
    usage: UsageBody | None = None
    stats: dict[str, float] = Field(default_factory=dict)
    files: list[FileBody] = Field(default_factory=list, max_length=100_000)
    error: str = Field("", max_length=100_000)
    exhausted: list[Literal["memory", "disk", "time"]] = Field(default_factory=list, max_length=3)
    exit_code: int | None = None
    counts: bool = True
    timeout: bool = False
    logs: dict[str, str] = Field(default_factory=dict, max_length=100)


class ExchangeBody(_Body):
    """Reports, and a request for up to ``limit`` more tasks, waiting up to ``wait`` s for one."""

    reports: list[ReportBody] = Field(default_factory=list, max_length=1000)
    limit: int = Field(0, ge=0, le=10_000)
    wait: float = Field(0.0, ge=0, le=60)
    time_left: float | None = Field(None, ge=0, description="hours left of the walltime")
    host: str = Field("", max_length=255)
    request_id: RequestId = None


class PilotEndBody(_Body):
    reason: str = Field("done", max_length=10_000)
