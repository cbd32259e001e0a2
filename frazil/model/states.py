"""Every state of tasks, jobs and datasets, and every allowed change, as tables.

A task's state moves through ``TASK_TRANSITIONS``; the pilot's phases inside ``processing``
move through ``PHASE_TRANSITIONS``. A job's state is derived from its tasks
(``derive_job_status``) and a dataset's from its jobs (``derive_dataset_status``); their tables
say which derived changes are possible at all, so that a derivation bug shows up as an
``IllegalTransition`` instead of a silently wrong state.

The services layer is the only caller that changes state; it checks each change here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from frazil.errors import IllegalTransition


class _DocEnum(StrEnum):
    """A string enum whose members each carry a docstring: ``NAME = "value", "what it means"``."""

    def __new__(cls, value: str, doc: str = "") -> _DocEnum:
        member = str.__new__(cls, value)
        member._value_ = value
        member.__doc__ = doc
        return member


class TaskStatus(_DocEnum):
    """Where a task is in its life."""

    IDLE = "idle", "Some dependency is not complete yet; nobody may claim the task."
    WAITING = "waiting", "Ready: every dependency is complete, and a site may claim the task."
    QUEUED = (
        "queued",
        "Claimed by a site and handed to its batch system; no pilot has started it yet.",
    )
    PROCESSING = "processing", "A pilot runs it; the pilot's phase says what it does right now."
    COMPLETE = "complete", "Finished successfully; its outputs are recorded."
    FAILED = (
        "failed",
        "Reached ``max_failures`` or hit a fatal error; waits for a person to reset it.",
    )
    SUSPENDED = (
        "suspended",
        "Held by a person (or by a failure in debug mode); nothing runs until it is resumed.",
    )


TASK_TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.IDLE: frozenset({TaskStatus.WAITING, TaskStatus.SUSPENDED}),
    TaskStatus.WAITING: frozenset({TaskStatus.QUEUED, TaskStatus.IDLE, TaskStatus.SUSPENDED}),
    TaskStatus.QUEUED: frozenset(
        {
            TaskStatus.PROCESSING,
            TaskStatus.WAITING,  # reset: the batch job vanished or timed out in the queue
            TaskStatus.IDLE,  # hard reset
            TaskStatus.FAILED,
            TaskStatus.SUSPENDED,
        }
    ),
    TaskStatus.PROCESSING: frozenset(
        {
            TaskStatus.COMPLETE,
            TaskStatus.WAITING,  # reset: a failure with retries left, or a timeout
            TaskStatus.IDLE,  # hard reset
            TaskStatus.FAILED,
            TaskStatus.SUSPENDED,
        }
    ),
    TaskStatus.COMPLETE: frozenset({TaskStatus.IDLE}),  # only a hard reset reopens it
    TaskStatus.FAILED: frozenset({TaskStatus.WAITING, TaskStatus.IDLE, TaskStatus.SUSPENDED}),
    TaskStatus.SUSPENDED: frozenset({TaskStatus.WAITING, TaskStatus.IDLE, TaskStatus.FAILED}),
}

#: States in which a site or its pilot holds the task (an attempt is open).
ACTIVE_TASK_STATES = frozenset({TaskStatus.QUEUED, TaskStatus.PROCESSING})


class TaskPhase(_DocEnum):
    """What the pilot does inside ``processing``, in the order it does it."""

    COPYING_INPUT = "copying_input", "Staging input files and checking their checksums."
    RUNNING = "running", "Running the trays and their modules."
    COPYING_OUTPUT = "copying_output", "Uploading output files."
    CLEANING = "cleaning", "Removing the scratch directory."


_PHASE_ORDER = list(TaskPhase)

#: A phase may only move forward; a task without inputs may skip ``copying_input``.
PHASE_TRANSITIONS: Mapping[TaskPhase | None, frozenset[TaskPhase]] = {
    None: frozenset(_PHASE_ORDER),
    **{p: frozenset(_PHASE_ORDER[i + 1 :]) for i, p in enumerate(_PHASE_ORDER)},
}


class AttemptOutcome(_DocEnum):
    """How an attempt of a task ended (``open`` while a site or pilot holds it).

    Every outcome but ``open`` and ``complete`` sends the task back (or fails it); whether it
    counts towards ``max_failures`` is said by the caller, not by the outcome alone.
    """

    OPEN = "open", "Running: a site or its pilot holds the task."
    COMPLETE = "complete", "The task finished successfully."
    FAILED = "failed", "The task's code, its inputs or its pilot failed."
    TIMEOUT = "timeout", "It ran out of walltime, or its pilot stopped sending heartbeats."
    PREEMPTED = "preempted", "The batch system took the slot back; not the task's fault."
    VANISHED = "vanished", "Its batch job ended or disappeared without a word from its pilot."
    CANCELLED = "cancelled", "Its batch job was cancelled, or its pilot ended holding it."
    UNSUBMITTED = "unsubmitted", "Claimed by a site that never submitted it, and handed back."
    SUSPENDED = "suspended", "A person suspended the task while it was held."
    RESET = "reset", "A person reset the task while it was held."
    HARD_RESET = "hard-reset", "A person hard-reset the task while it was held."


#: What a site may say about an attempt whose batch job it lost.
LOST_OUTCOMES = frozenset(
    {
        AttemptOutcome.VANISHED,
        AttemptOutcome.FAILED,
        AttemptOutcome.TIMEOUT,
        AttemptOutcome.CANCELLED,
        AttemptOutcome.PREEMPTED,
        AttemptOutcome.UNSUBMITTED,
    }
)


def failure_outcome(*, timeout: bool, counts: bool) -> AttemptOutcome:
    """The outcome of a failure a pilot reports: ``timeout`` when it ran out of time, else
    ``failed``, or ``preempted`` when the failure does not count (the slot was taken back)."""
    if timeout:
        return AttemptOutcome.TIMEOUT
    return AttemptOutcome.FAILED if counts else AttemptOutcome.PREEMPTED


def attempt_is_current(
    *, status: str, attempts: int, number: int, outcome: str,
    states: Collection[TaskStatus] = ACTIVE_TASK_STATES,
) -> bool:  # fmt: skip
    """Whether attempt ``number`` is its task's current one: the task's latest attempt, still
    open, with the task (in ``status``, at attempt ``attempts``) in one of ``states``.
    Anything a pilot or a site says about an attempt that is not current changes nothing."""
    return attempts == number and outcome == AttemptOutcome.OPEN and TaskStatus(status) in states


class PilotState(_DocEnum):
    """A multi-task pilot's state."""

    OPEN = "open", "Its batch job runs (or waits): it exchanges reports for tasks."
    ENDED = "ended", "It said it ended, or its site saw its batch job end; it gets nothing more."


class JobStatus(_DocEnum):
    """A job's state, derived from its tasks."""

    PROCESSING = "processing", "Tasks are waiting or running and none has failed yet."
    ERRORS = "errors", "Still running, but some task has failed at least once and is being retried."
    SUSPENDED = "suspended", "Some task is suspended (and none has failed for good)."
    FAILED = "failed", "Some task failed for good; the job cannot finish without a reset."
    COMPLETE = "complete", "Every task is complete."


JOB_TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PROCESSING: frozenset(
        {JobStatus.ERRORS, JobStatus.SUSPENDED, JobStatus.FAILED, JobStatus.COMPLETE}
    ),
    JobStatus.ERRORS: frozenset(
        {JobStatus.PROCESSING, JobStatus.SUSPENDED, JobStatus.FAILED, JobStatus.COMPLETE}
    ),
    JobStatus.SUSPENDED: frozenset({JobStatus.PROCESSING, JobStatus.ERRORS, JobStatus.FAILED}),
    JobStatus.FAILED: frozenset({JobStatus.PROCESSING, JobStatus.ERRORS, JobStatus.SUSPENDED}),
    JobStatus.COMPLETE: frozenset({JobStatus.PROCESSING}),  # a hard reset reopens it
}


class DatasetStatus(_DocEnum):
    """A dataset's state. ``suspended`` is set by a person; the others are derived."""

    PROCESSING = "processing", "Jobs remain to be done (or the dataset is ``always_active``)."
    SUSPENDED = "suspended", "Held by a person: no task of it is handed to any site."
    ERRORS = "errors", "Some job failed for good and needs a person's attention."
    COMPLETE = "complete", "Every job is complete and no more jobs will come."


DATASET_TRANSITIONS: Mapping[DatasetStatus, frozenset[DatasetStatus]] = {
    DatasetStatus.PROCESSING: frozenset(
        {DatasetStatus.SUSPENDED, DatasetStatus.ERRORS, DatasetStatus.COMPLETE}
    ),
    DatasetStatus.SUSPENDED: frozenset(
        {DatasetStatus.PROCESSING, DatasetStatus.ERRORS, DatasetStatus.COMPLETE}
    ),
    DatasetStatus.ERRORS: frozenset(
        {DatasetStatus.PROCESSING, DatasetStatus.SUSPENDED, DatasetStatus.COMPLETE}
    ),
    DatasetStatus.COMPLETE: frozenset({DatasetStatus.PROCESSING, DatasetStatus.SUSPENDED}),
}


def check_task_transition(old: TaskStatus, new: TaskStatus) -> None:
    """Raise ``IllegalTransition`` unless a task may go from ``old`` to ``new``."""
    if new not in TASK_TRANSITIONS[old]:
        raise IllegalTransition("task", old.value, new.value)


def check_phase_transition(old: TaskPhase | None, new: TaskPhase) -> None:
    """Raise ``IllegalTransition`` unless the pilot may move from phase ``old`` to ``new``."""
    if new not in PHASE_TRANSITIONS[old]:
        raise IllegalTransition("phase", old.value if old else "none", new.value)


def check_job_transition(old: JobStatus, new: JobStatus) -> None:
    """Raise ``IllegalTransition`` unless a job's derived state may change this way."""
    if new not in JOB_TRANSITIONS[old]:
        raise IllegalTransition("job", old.value, new.value)


def check_dataset_transition(old: DatasetStatus, new: DatasetStatus) -> None:
    """Raise ``IllegalTransition`` unless a dataset may go from ``old`` to ``new``."""
    if new not in DATASET_TRANSITIONS[old]:
        raise IllegalTransition("dataset", old.value, new.value)


@dataclass(frozen=True)
class TaskSummary:
    """What job-status derivation needs to know of one task."""

    status: TaskStatus
    failures: int = 0


@dataclass(frozen=True)
class JobCounts:
    """A job's task counters, as the database keeps them on the job row."""

    tasks: int
    complete: int = 0
    failed: int = 0
    suspended: int = 0
    failures: int = 0  # failures of all its tasks since the last hard reset

    @classmethod
    def of(cls, tasks: Iterable[TaskSummary]) -> JobCounts:
        """The counters of a list of tasks."""
        items = list(tasks)
        return cls(
            tasks=len(items),
            complete=sum(t.status is TaskStatus.COMPLETE for t in items),
            failed=sum(t.status is TaskStatus.FAILED for t in items),
            suspended=sum(t.status is TaskStatus.SUSPENDED for t in items),
            failures=sum(t.failures for t in items),
        )


#: Which task states the job counters count.
_COUNTED = (TaskStatus.COMPLETE, TaskStatus.FAILED, TaskStatus.SUSPENDED)


def counter_deltas(old: TaskStatus, new: TaskStatus) -> tuple[int, int, int]:
    """How a task's change moves its job's (complete, failed, suspended) counters."""
    return tuple(int(new is s) - int(old is s) for s in _COUNTED)  # type: ignore[return-value]


def derive_job_status(counts: JobCounts) -> JobStatus:
    """A job's state from its task counters (first rule that matches).

    complete if every task is; failed if any task failed for good; suspended if any is
    suspended; errors if its tasks have failed at least once; processing otherwise.
    """
    if counts.tasks and counts.complete == counts.tasks:
        return JobStatus.COMPLETE
    if counts.failed:
        return JobStatus.FAILED
    if counts.suspended:
        return JobStatus.SUSPENDED
    if counts.failures:
        return JobStatus.ERRORS
    return JobStatus.PROCESSING


@dataclass(frozen=True)
class DatasetProgress:
    """What dataset-status derivation needs to know: job counts and the dataset's flags."""

    jobs_submitted: int
    jobs_materialized: int
    jobs_complete: int
    jobs_failed: int
    suspended: bool = False
    truncated: bool = False
    always_active: bool = False


def derive_dataset_status(p: DatasetProgress) -> DatasetStatus:
    """A dataset's state from its jobs and flags (first rule that matches).

    suspended if a person suspended it; errors if any job failed for good; complete when
    every materialized job is complete and no more will come (all ``jobs_submitted`` exist,
    or the dataset was truncated), unless it is ``always_active``; processing otherwise.
    """
    if p.suspended:
        return DatasetStatus.SUSPENDED
    if p.jobs_failed > 0:
        return DatasetStatus.ERRORS
    no_more_jobs = p.truncated or p.jobs_materialized >= p.jobs_submitted
    if (
        not p.always_active
        and no_more_jobs
        and p.jobs_materialized > 0
        and p.jobs_complete == p.jobs_materialized
    ):
        return DatasetStatus.COMPLETE
    return DatasetStatus.PROCESSING
