"""What people read: datasets, jobs, tasks, attempts, logs, statistics, sites, quotas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from frazil.wire.reports import FileRecord

T = TypeVar("T")

#: A listing's answer carries in this header how many rows the whole listing has.
TOTAL_HEADER = "Frazil-Total"


@dataclass(frozen=True)
class Page(Generic[T]):
    """A page of a listing, and how many rows the whole listing has (-1: not counted)."""

    items: list[T]
    total: int


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
    #: on request (``?breakdown=true``): site -> state -> n for the tasks that have a site,
    #: and task name -> phase -> n for the tasks being processed
    by_site: dict[str, dict[str, int]] = field(default_factory=dict)
    by_phase: dict[str, dict[str, int]] = field(default_factory=dict)

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
    files: list[FileRecord] = field(default_factory=list)  # what it read and wrote
    logs: list[str] = field(default_factory=list)  # the names of the logs it left


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
class TokenRecord:
    """A token's record (never the token): ``user`` is the account it acts as (None: a
    site's token), ``scope`` how far it reaches, ``expires_at`` when it stops."""

    id: int
    name: str
    role: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    user: str | None = None
    scope: str | None = None
    expires_at: float | None = None


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
    user: str | None = None
    scope: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True)
class Health:
    """How the server is (``GET /health``, no token needed): ``status`` is ``ok``, or
    ``unhealthy`` (answered with HTTP 503) with the reasons in ``problems``: the database
    cannot be reached, or a daemon keeps crashing."""

    status: str
    version: str
    database: str = "reachable"  # or "unreachable"
    daemons: tuple[DaemonHealth, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checked:
    """Which jobs a config's check resolved: ``jobs`` of the ``of`` asked about (all of them,
    or the first, the last and, when ``sampled``, a random sample of the others)."""

    jobs: int
    of: int
    sampled: bool
    summary: str


@dataclass(frozen=True)
class Submitted:
    """A dataset was submitted: its id, and how its config was checked."""

    id: int
    checked: Checked


@dataclass(frozen=True)
class ConfigEdited:
    """A config's new version, and how it was checked."""

    version: int
    checked: Checked


@dataclass(frozen=True)
class JobsSet:
    """A dataset's new number of jobs, and how the new jobs were checked (None: no new jobs)."""

    jobs: int
    checked: Checked | None


@dataclass(frozen=True)
class Caller:
    """Whom the server takes a request's token for: a user (or a site), their role, what
    this token may do (``read`` < ``write`` < ``admin``), its name, and the user's groups
    (group -> may write to its datasets)."""

    name: str
    role: str
    scope: str = ""
    groups: dict[str, bool] = field(default_factory=dict)
    token: str = ""


@dataclass(frozen=True)
class UserView:
    """A user account (never its password): its groups map to whether it may write there."""

    name: str
    role: str
    source: str
    email: str | None
    created_at: float
    disabled_at: float | None
    groups: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupView:
    """A group of users: each member's name maps to whether they may write to the group's
    datasets."""

    name: str
    description: str
    created_at: float
    members: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class RightView:
    """One right of a caller on a dataset (``read``, ``control``), and why it is or is not
    theirs."""

    right: str
    allowed: bool
    why: str


@dataclass(frozen=True)
class Permissions:
    """What a caller may do to one dataset, and why (``GET /me/permissions``)."""

    caller: Caller
    dataset: int
    rights: list[RightView]


@dataclass(frozen=True)
class EventView:
    """One entry of the audit trail: who did what to which object, and why."""

    id: int
    time: float
    actor: str  # user:NAME, admin:NAME, site:NAME, daemon:NAME, pilot
    dataset_id: int | None
    object_type: str  # dataset | job | task
    object_id: str
    action: str  # the event's kind: submit, suspend, status, failed, ...
    old_status: str | None
    new_status: str | None
    count: int  # objects changed by one action
    reason: str


@dataclass(frozen=True)
class SiteStatus:
    """A registered site as its operator watches it: when it was last heard from, what one
    of its slots offers, and what its tasks and attempts are doing."""

    name: str
    last_seen: float
    age: float  # seconds since ``last_seen``, by the server's clock
    cpu: int
    gpu: int
    memory: float  # GB
    disk: float  # GB
    time: float  # hours
    os: str | None
    attributes: dict[str, Any]
    info: dict[str, Any]
    running: int  # its tasks processing
    queued: int  # its tasks claimed and not started
    failed: int  # attempts at it that failed in the last ``FAILED_WINDOW`` seconds


#: the window of ``SiteStatus.failed`` (seconds)
FAILED_WINDOW = 3600.0


@dataclass(frozen=True)
class PilotView:
    """A multi-task pilot: what its batch job holds, where it runs, and how far it got."""

    id: int
    site: str
    state: str  # open | ended
    cpu: int
    gpu: int
    memory: float  # GB
    disk: float  # GB
    time: float  # hours
    os: str | None
    attributes: dict[str, Any]
    batch_id: str | None
    host: str | None
    created_at: float
    seen_at: float | None
    ended_at: float | None
    reason: str | None  # why it ended
    tasks: int  # tasks handed to it
    running: int  # of them, held now (open attempts)


@dataclass(frozen=True)
class ConfigVersion:
    """One stored version of a dataset's config: when, who (as the audit trail names
    callers, ``user:alice``) and why."""

    version: int
    created_at: float
    created_by: str
    comment: str
    current: bool


@dataclass(frozen=True)
class DatasetDeleted:
    """A dataset was deleted, with every row of its own: how many jobs, tasks and attempts
    went with it."""

    id: int
    alias: str | None
    jobs: int
    tasks: int
    attempts: int


@dataclass(frozen=True)
class DaemonHealth:
    """One of the server's daemons, as its supervisor sees it."""

    name: str
    #: ``waiting`` (not run yet), ``running``, ``restarting`` (it crashed, fewer times in a row
    #: than the administrator is told of), ``failing`` (it keeps crashing), ``stopped``
    state: str
    crashes: int = 0  # in a row
    runs: int = 0  # steps that succeeded
    error: str = ""  # what its last crash said
