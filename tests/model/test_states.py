import itertools

import pytest

from frazil.errors import IllegalTransition
from frazil.model.states import (
    DATASET_TRANSITIONS,
    JOB_TRANSITIONS,
    LOST_OUTCOMES,
    TASK_TRANSITIONS,
    AttemptOutcome,
    DatasetProgress,
    DatasetStatus,
    JobCounts,
    JobStatus,
    PilotState,
    TaskPhase,
    TaskStatus,
    TaskSummary,
    attempt_is_current,
    check_dataset_transition,
    check_job_transition,
    check_phase_transition,
    check_task_transition,
    counter_deltas,
    derive_dataset_status,
    derive_job_status,
    failure_outcome,
)


def test_every_state_has_a_row_and_a_docstring():
    for enum, table in (
        (TaskStatus, TASK_TRANSITIONS),
        (JobStatus, JOB_TRANSITIONS),
        (DatasetStatus, DATASET_TRANSITIONS),
    ):
        assert set(table) == set(enum)
        for state, targets in table.items():
            assert state not in targets, f"{state} lists itself"
    for enum in (TaskStatus, AttemptOutcome, PilotState):
        for member in enum:
            assert member.__doc__ and member.__doc__ != enum.__doc__, member


@pytest.mark.parametrize(
    ("timeout", "counts", "outcome"),
    [
        (True, True, AttemptOutcome.TIMEOUT),
        (True, False, AttemptOutcome.TIMEOUT),
        (False, True, AttemptOutcome.FAILED),
        (False, False, AttemptOutcome.PREEMPTED),
    ],
)
def test_a_reported_failure_has_one_outcome_rule(timeout, counts, outcome):
    assert failure_outcome(timeout=timeout, counts=counts) is outcome


@pytest.mark.parametrize(
    ("status", "attempts", "outcome", "current"),
    [
        ("processing", 2, "open", True),
        ("queued", 2, "open", True),
        ("processing", 3, "open", False),  # a later attempt took over
        ("processing", 2, "failed", False),  # ended
        ("waiting", 2, "open", False),  # the task left its active states
        ("complete", 2, "complete", False),
    ],
)
def test_an_attempt_is_current_when_latest_open_and_active(status, attempts, outcome, current):
    kw = {"status": status, "attempts": attempts, "number": 2, "outcome": outcome}
    assert attempt_is_current(**kw) is current
    assert not attempt_is_current(**kw, states=(TaskStatus.COMPLETE,))


def test_a_lost_attempt_never_ends_open_complete_or_by_a_persons_action():
    kept = {AttemptOutcome.OPEN, AttemptOutcome.COMPLETE, AttemptOutcome.SUSPENDED,
            AttemptOutcome.RESET, AttemptOutcome.HARD_RESET}  # fmt: skip
    assert set(AttemptOutcome) - kept == LOST_OUTCOMES


def test_the_happy_path_of_a_task_is_allowed():
    path = [
        TaskStatus.IDLE,
        TaskStatus.WAITING,
        TaskStatus.QUEUED,
        TaskStatus.PROCESSING,
        TaskStatus.COMPLETE,
    ]
    for old, new in itertools.pairwise(path):
        check_task_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (TaskStatus.IDLE, TaskStatus.QUEUED),  # skipping readiness
        (TaskStatus.WAITING, TaskStatus.PROCESSING),  # no claim
        (TaskStatus.COMPLETE, TaskStatus.WAITING),  # only a hard reset reopens
        (TaskStatus.QUEUED, TaskStatus.COMPLETE),  # no pilot start
        (TaskStatus.IDLE, TaskStatus.COMPLETE),
    ],
)
def test_illegal_task_transition_names_both_states(old, new):
    with pytest.raises(IllegalTransition) as info:
        check_task_transition(old, new)
    assert old.value in str(info.value) and new.value in str(info.value)
    assert info.value.old == old.value and info.value.new == new.value


def test_reset_and_hard_reset_reach_their_targets_from_every_active_state():
    for state in (TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.FAILED):
        check_task_transition(state, TaskStatus.WAITING)
    for state in TaskStatus:
        if state is not TaskStatus.IDLE:
            check_task_transition(state, TaskStatus.IDLE)


def test_phases_only_move_forward():
    check_phase_transition(None, TaskPhase.COPYING_INPUT)
    check_phase_transition(None, TaskPhase.RUNNING)  # no inputs to copy
    check_phase_transition(TaskPhase.RUNNING, TaskPhase.COPYING_OUTPUT)
    with pytest.raises(IllegalTransition, match="copying_output -> running"):
        check_phase_transition(TaskPhase.COPYING_OUTPUT, TaskPhase.RUNNING)
    with pytest.raises(IllegalTransition):
        check_phase_transition(TaskPhase.CLEANING, TaskPhase.CLEANING)


def S(status, failures=0):
    return TaskSummary(TaskStatus(status), failures)


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        ([S("complete"), S("complete")], JobStatus.COMPLETE),
        ([S("complete"), S("failed", 5)], JobStatus.FAILED),
        ([S("failed", 5), S("suspended")], JobStatus.FAILED),
        ([S("processing"), S("suspended")], JobStatus.SUSPENDED),
        ([S("complete"), S("waiting", 2)], JobStatus.ERRORS),
        ([S("complete", 1), S("complete")], JobStatus.COMPLETE),
        ([S("complete"), S("processing"), S("idle")], JobStatus.PROCESSING),
        ([], JobStatus.PROCESSING),
    ],
)
def test_job_status_is_derived_from_tasks(tasks, expected):
    assert derive_job_status(JobCounts.of(tasks)) is expected


def test_counter_deltas_follow_the_counted_states():
    assert counter_deltas(TaskStatus.PROCESSING, TaskStatus.COMPLETE) == (1, 0, 0)
    assert counter_deltas(TaskStatus.COMPLETE, TaskStatus.IDLE) == (-1, 0, 0)
    assert counter_deltas(TaskStatus.SUSPENDED, TaskStatus.FAILED) == (0, 1, -1)
    assert counter_deltas(TaskStatus.WAITING, TaskStatus.QUEUED) == (0, 0, 0)


def test_job_transitions_are_checked():
    check_job_transition(JobStatus.PROCESSING, JobStatus.COMPLETE)
    with pytest.raises(IllegalTransition, match="job transition: complete -> failed"):
        check_job_transition(JobStatus.COMPLETE, JobStatus.FAILED)


def P(**kw):
    base = dict(jobs_submitted=10, jobs_materialized=10, jobs_complete=0, jobs_failed=0)
    base.update(kw)
    return DatasetProgress(**base)


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (P(), DatasetStatus.PROCESSING),
        (P(jobs_complete=10), DatasetStatus.COMPLETE),
        (P(jobs_complete=10, always_active=True), DatasetStatus.PROCESSING),
        (P(jobs_materialized=4, jobs_complete=4), DatasetStatus.PROCESSING),
        (P(jobs_materialized=4, jobs_complete=4, truncated=True), DatasetStatus.COMPLETE),
        (P(jobs_complete=9, jobs_failed=1), DatasetStatus.ERRORS),
        (P(jobs_complete=10, suspended=True), DatasetStatus.SUSPENDED),
        (P(jobs_submitted=0, jobs_materialized=0), DatasetStatus.PROCESSING),
    ],
)
def test_dataset_status_is_derived_from_jobs_and_flags(progress, expected):
    assert derive_dataset_status(progress) is expected


def test_dataset_transitions_are_checked():
    check_dataset_transition(DatasetStatus.COMPLETE, DatasetStatus.PROCESSING)
    with pytest.raises(IllegalTransition, match="dataset transition: complete -> errors"):
        check_dataset_transition(DatasetStatus.COMPLETE, DatasetStatus.ERRORS)
