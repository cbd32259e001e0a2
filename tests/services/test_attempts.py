import pytest
from sqlalchemy import select

from frazil.errors import BadPasskey, IllegalTransition, JobSpecError, NotFound, StaleAttempt
from frazil.model.records import FileRecord, SiteResources, Usage
from frazil.model.states import AttemptOutcome, TaskPhase, TaskStatus
from frazil.services import attempts, batch_jobs, queries, sites
from frazil.services.claim import PREFER_OTHER_SITE, claim
from frazil.services.control import Scope, reset
from frazil.services.submit import submit
from frazil.store.schema import task
from frazil.wire import Failure, Finish
from tests.conftest import store_unchecked
from tests.services.conftest import make_config

NOW = 3_000_000.0
SITE = SiteResources(name="site-a", cpu=4, gpu=1, memory=16, disk=100, time=24)


def run_claim(db, claim_, now=NOW, **finish):
    attempts.start(db, claim_.task_id, claim_.attempt, claim_.passkey, now=now, host="node1")
    attempts.finish(
        db, claim_.task_id, claim_.attempt, claim_.passkey, Finish(**finish), now=now + 1
    )


def statuses(db, d, job=0):
    return {t.name: t.status for t in queries.list_tasks(db, d, job=job)}


def test_a_diamond_runs_to_completion_releasing_children(db):
    d = submit(db, make_config("diamond"), jobs=1, now=NOW)
    (a,) = claim(db, SITE, 10, NOW)
    assert a.name == "a"
    run_claim(db, a)
    assert statuses(db, d) == {"a": "complete", "b": "waiting", "c": "waiting", "d": "idle"}
    b, c = claim(db, SITE, 10, NOW)
    run_claim(db, b)
    assert statuses(db, d)["d"] == "idle"  # still waits for c
    run_claim(db, c)
    (last,) = claim(db, SITE, 10, NOW)
    assert last.name == "d"
    run_claim(db, last)
    view = queries.dataset_status(db, d)
    assert view.dataset.status == "complete" and view.dataset.jobs_complete == 1
    assert view.job_counts == {"complete": 1}


def test_start_heartbeat_phases_and_details(db):
    d = submit(db, make_config("flat", 1), jobs=1, now=NOW)
    (c,) = claim(db, SITE, 1, NOW)
    batch_jobs.record_batch_id(db, c.task_id, c.attempt, "12345", site="site-a")
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW + 5, host="node7")
    attempts.heartbeat(
        db, c.task_id, c.attempt, c.passkey, now=NOW + 6, phase=TaskPhase.COPYING_INPUT
    )
    attempts.heartbeat(db, c.task_id, c.attempt, c.passkey, now=NOW + 7, phase=TaskPhase.RUNNING)
    with pytest.raises(IllegalTransition, match="running -> copying_input"):
        attempts.heartbeat(
            db, c.task_id, c.attempt, c.passkey, now=NOW + 8, phase=TaskPhase.COPYING_INPUT
        )
    attempts.finish(
        db,
        c.task_id,
        c.attempt,
        c.passkey,
        Finish(
            usage=Usage(cpu_time=12.5, wall_time=14.0, max_memory=1.5),
            stats={"events": 1000, "passed": 42},
            files=(
                FileRecord(
                    url="file:///data/out.i3",
                    movement="output",
                    size=10,
                    checksum_type="sha256",
                    checksum="ab",
                ),
            ),
        ),
        now=NOW + 20,
    )
    detail = queries.task_detail(db, c.task_id)
    assert detail.task.status == "complete" and detail.task.phase is None
    (a,) = detail.attempts
    assert (a.site, a.host, a.batch_id, a.outcome, a.exit_code) == (
        "site-a",
        "node7",
        "12345",
        "complete",
        0,
    )
    assert (a.started_at, a.ended_at, a.cpu_time, a.max_memory) == (NOW + 5, NOW + 20, 12.5, 1.5)
    assert a.stats == {"events": 1000.0, "passed": 42.0}
    assert a.phase == "running"
    assert queries.dataset_status(db, d).dataset.status == "complete"


def test_wrong_passkey_and_stale_attempts_change_nothing(db):
    d = submit(db, make_config("flat", 1), jobs=1, now=NOW)
    (c,) = claim(db, SITE, 1, NOW)
    with pytest.raises(BadPasskey):
        attempts.start(db, c.task_id, c.attempt, "not-the-passkey", now=NOW)
    with pytest.raises(NotFound):
        attempts.start(db, c.task_id, c.attempt + 1, c.passkey, now=NOW)
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW)
    reset(db, Scope(d), now=NOW + 1)
    (again,) = claim(db, SITE, 1, NOW + 2)
    assert again.attempt == 2
    for call in (
        lambda: attempts.finish(db, c.task_id, c.attempt, c.passkey, now=NOW + 3),
        lambda: attempts.heartbeat(db, c.task_id, c.attempt, c.passkey, now=NOW + 3),
        lambda: attempts.fail(db, c.task_id, c.attempt, c.passkey, Failure("late"), now=NOW + 3),
    ):
        with pytest.raises(StaleAttempt):
            call()
    detail = queries.task_detail(db, c.task_id)
    assert detail.task.status == "queued" and detail.task.attempts == 2
    assert [a.outcome for a in detail.attempts] == ["reset", "open"]
    with pytest.raises(BadPasskey):
        attempts.start(db, again.task_id, again.attempt, c.passkey, now=NOW)


def test_failures_retry_then_fail(db):
    d = submit(db, make_config("flat", 1), jobs=1, now=NOW)  # max_failures: 3
    outcomes = []
    for i in range(3):
        (c,) = claim(db, SITE, 1, NOW + i)
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW + i)
        outcomes.append(
            attempts.fail(
                db, c.task_id, c.attempt, c.passkey, Failure(f"boom {i}", exit_code=3), now=NOW + i
            )
        )
    assert outcomes == [TaskStatus.WAITING, TaskStatus.WAITING, TaskStatus.FAILED]
    view = queries.dataset_status(db, d)
    assert view.dataset.status == "errors" and view.job_counts == {"failed": 1}
    detail = queries.task_detail(db, c.task_id)
    assert [a.error for a in detail.attempts] == ["boom 0", "boom 1", "boom 2"]
    assert detail.task.failures == 3
    assert claim(db, SITE, 1, NOW) == []


def test_job_shows_errors_while_retrying(db):
    d = submit(db, make_config("chain", 2), jobs=1, now=NOW)
    (c,) = claim(db, SITE, 1, NOW)
    attempts.fail(db, c.task_id, c.attempt, c.passkey, Failure("transient"), now=NOW)
    assert queries.list_jobs(db, d)[0].status == "errors"


def test_debug_mode_suspends_on_failure(db):
    d = submit(db, make_config("flat", 1), jobs=1, now=NOW, debug=True)
    (c,) = claim(db, SITE, 1, NOW)
    assert (
        attempts.fail(db, c.task_id, c.attempt, c.passkey, Failure("x"), now=NOW)
        is TaskStatus.SUSPENDED
    )
    assert queries.list_jobs(db, d)[0].status == "suspended"


def test_exhausted_resources_are_raised(db):
    d = submit(
        db,
        make_config("flat", 1, requirements={"memory": 2.0, "time": 1.0, "disk": 4}),
        jobs=1,
        now=NOW,
    )
    (c,) = claim(db, SITE, 1, NOW)
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW)
    attempts.fail(
        db,
        c.task_id,
        c.attempt,
        c.passkey,
        Failure(
            "oom",
            usage=Usage(max_memory=3.0, wall_time=7200.0),
            exhausted=("memory", "time", "disk"),
        ),
        now=NOW,
    )
    (t,) = queries.list_tasks(db, d)
    assert (t.memory, t.time, t.disk) == (4.5, 3.0, 6.0)  # 1.5x measured; disk: 1.5x requested
    with pytest.raises(ValueError, match="unknown resources"):
        attempts.fail(
            db, c.task_id, c.attempt, c.passkey, Failure("x", exhausted=("cpu",)), now=NOW
        )


def test_spec_is_resolved_once_and_stored(db):
    d = submit(db, make_config("flat", 1), jobs=3, now=NOW)
    claims = claim(db, SITE, 3, NOW)
    c = next(c for c in claims if c.job_index == 2)
    spec = attempts.spec(db, c.task_id, c.attempt, c.passkey, now=NOW, system={"site": "x"})
    assert spec["trays"][0]["modules"][0]["argv"] == ["2"]
    assert (spec["task_id"], spec["attempt"], spec["dataset"]) == (c.task_id, 1, d)
    assert attempts.spec(db, c.task_id, c.attempt, c.passkey, now=NOW) == spec
    with pytest.raises(BadPasskey):
        attempts.spec(db, c.task_id, c.attempt, "wrong", now=NOW)


def test_a_queued_task_can_fail_before_starting(db):
    submit(db, make_config("flat", 1), jobs=1, now=NOW)
    (c,) = claim(db, SITE, 1, NOW)
    assert (
        attempts.fail(db, c.task_id, c.attempt, c.passkey, Failure("submit failed"), now=NOW)
        is TaskStatus.WAITING
    )


def test_many_heartbeats_in_one_transaction(db):
    d = submit(db, make_config("flat", 3), jobs=1, now=NOW)
    a, b, c = claim(db, SITE, 3, NOW)
    for x in (a, b):
        attempts.start(db, x.task_id, x.attempt, x.passkey, now=NOW)
    beats = [
        attempts.Beat(a.task_id, a.attempt, a.passkey, TaskPhase.RUNNING),
        attempts.Beat(b.task_id, b.attempt, "wrong"),
        attempts.Beat(c.task_id, c.attempt, c.passkey),  # queued, not processing
        attempts.Beat(999_999, 1, "x"),  # no such task (a deleted dataset's): over
        attempts.Beat(a.task_id, 9, a.passkey),  # no such attempt
    ]
    assert attempts.heartbeats(db, beats, now=NOW + 7) == [
        "ok", "denied", "stale", "stale", "denied",
    ]  # fmt: skip
    tasks = {t.id: t for t in queries.list_tasks(db, d)}
    assert tasks[a.task_id].phase == "running"
    with pytest.raises(IllegalTransition):
        attempts.heartbeats(
            db, [attempts.Beat(a.task_id, a.attempt, a.passkey, TaskPhase.COPYING_INPUT)], now=NOW
        )


def test_a_walltime_kill_asks_for_more_time(db):
    d = submit(db, make_config("flat", 1, requirements={"time": 2.0}), jobs=1, now=NOW)
    (c,) = claim(db, SITE, 1, NOW)
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW)
    new = batch_jobs.lost(
        db,
        c.task_id,
        c.attempt,
        site="site-a",
        now=NOW,
        reason="TIMEOUT",
        outcome=AttemptOutcome.TIMEOUT,
    )
    assert new is TaskStatus.WAITING
    (t,) = queries.list_tasks(db, d)
    assert t.time == 3.0
    assert queries.task_detail(db, t.id).attempts[0].outcome == "timeout"


def test_stale_attempts_of_a_site(db):
    d = submit(db, make_config("flat", 2), jobs=1, now=NOW)
    a, b = claim(db, SITE, 2, NOW)
    assert batch_jobs.stale_attempts(db, "site-a", [(a.task_id, 1), (b.task_id, 1)]) == []
    from frazil.services.control import Scope, suspend

    suspend(db, Scope(d, task_id=a.task_id), now=NOW)
    pairs = [(a.task_id, 1), (b.task_id, 1), (b.task_id, 2), (999, 1)]
    assert batch_jobs.stale_attempts(db, "site-a", pairs) == [
        (a.task_id, 1),
        (b.task_id, 2),
        (999, 1),
    ]
    assert batch_jobs.stale_attempts(db, "other-site", [(b.task_id, 1)]) == [(b.task_id, 1)]


def test_a_repeated_start_of_the_same_attempt_is_accepted(db):
    d = submit(db, make_config("flat", 1), jobs=1, now=NOW)
    (c,) = claim(db, SITE, 1, NOW)
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW + 1, host="node1")
    # the answer was lost and the pilot's client said it again
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW + 2, host="node1")
    detail = queries.task_detail(db, c.task_id)
    assert (detail.task.status, detail.task.failures) == ("processing", 0)
    (a,) = detail.attempts
    assert (a.outcome, a.started_at) == ("open", NOW + 1)
    attempts.finish(db, c.task_id, c.attempt, c.passkey, now=NOW + 3)
    assert statuses(db, d) == {"t0": "complete"}
    # a start for an attempt that ended is still refused
    with pytest.raises(StaleAttempt):
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW + 4)


def test_a_site_learns_the_attempts_it_claimed_and_never_submitted(db):
    submit(db, make_config("flat", 4), jobs=1, now=NOW)
    claims = claim(db, SITE, 4, NOW)
    other = claim(db, SiteResources(name="site-b"), 1, NOW)
    assert other == []  # site-a holds all four
    submitted, started, _, lost = claims
    attempts.start(db, started.task_id, started.attempt, started.passkey, now=NOW + 1)
    pairs = batch_jobs.unsubmitted(db, "site-a", [submitted.task_id])
    assert pairs == [(c.task_id, c.attempt) for c in claims[2:]]
    assert batch_jobs.unsubmitted(db, "site-b", []) == []
    batch_jobs.lost(
        db, lost.task_id, lost.attempt, site="site-a", now=NOW + 2, reason="never submitted",
        outcome=AttemptOutcome.UNSUBMITTED, counts=False,
    )  # fmt: skip
    detail = queries.task_detail(db, lost.task_id)
    assert (detail.task.status, detail.task.failures) == ("waiting", 0)
    assert batch_jobs.unsubmitted(db, "site-a", [submitted.task_id]) == [
        (claims[2].task_id, claims[2].attempt)
    ]


def test_a_spec_that_cannot_be_resolved_fails_the_attempt_with_one_located_line(db):
    d = submit(db, make_config("flat", 1), jobs=2, now=NOW)
    bad = [{"modules": [{"src": "run.sh", "args": "$eval(1/$args(job))"}]}]
    store_unchecked(db, d, make_config("flat", 1, trays=bad))
    claims = {c.job_index: c for c in claim(db, SITE, 2, NOW)}
    c = claims[0]
    with pytest.raises(
        JobSpecError, match=r"^tasks\[0\]\.trays\[0\]\.modules\[0\]\.args: division"
    ):
        attempts.spec(db, c.task_id, c.attempt, c.passkey, now=NOW + 1)
    detail = queries.task_detail(db, c.task_id)
    assert (detail.task.status, detail.task.failures) == ("failed", 1)  # max_failures is 3
    (a,) = detail.attempts
    assert a.outcome == "failed" and a.error is not None and "\n" not in a.error
    assert a.error.startswith("the task's spec cannot be resolved: tasks[0].trays[0]")
    # the other job is unaffected
    ok = claims[1]
    assert attempts.spec(db, ok.task_id, ok.attempt, ok.passkey, now=NOW)["job"] == 1
    assert queries.dataset_status(db, d).dataset.jobs_failed == 1


def test_a_failed_task_prefers_another_live_site_that_fits_it(db):
    d = submit(db, make_config("flat", 2), jobs=1, now=NOW)
    site_b = SiteResources(name="site-b", memory=16)
    for s, seen in ((SITE, NOW), (site_b, NOW - 60),
                    (SiteResources(name="site-old", memory=16), NOW - 3600)):  # fmt: skip
        sites.register(db, s, now=seen)
    first, second = claim(db, SITE, 2, NOW)
    attempts.fail(db, first.task_id, 1, first.passkey, Failure("input missing here"), now=NOW + 1)
    # site-a waits while site-b, alive and fitting, may take it; site-b does
    assert claim(db, SITE, 2, NOW + 2) == []
    (again,) = claim(db, site_b, 2, NOW + 2)
    assert (again.task_id, again.attempt) == (first.task_id, 2)
    # it fails at site-b too: now site-a is the other site
    attempts.fail(db, again.task_id, 2, again.passkey, Failure("broken here too"), now=NOW + 3)
    assert claim(db, site_b, 2, NOW + 4) == []
    # nobody else claims it: after a while the same site may take it again
    (late,) = claim(db, site_b, 2, NOW + 4 + PREFER_OTHER_SITE)
    assert (late.task_id, late.attempt) == (first.task_id, 3)
    assert queries.task_detail(db, first.task_id).task.failures == 2

    # a site long unseen, or one the task does not fit, is no reason to wait
    sites.register(db, site_b, now=NOW - 5000)
    sites.register(db, SiteResources(name="site-small", memory=0.5), now=NOW + 6000)
    attempts.fail(db, second.task_id, 1, second.passkey, Failure("x"), now=NOW + 6000)
    with db.read() as conn:
        avoid = conn.execute(select(task.c.avoid_site).where(task.c.id == second.task_id))
        assert avoid.scalar_one() is None
    (retry,) = claim(db, SITE, 2, NOW + 6001)
    assert (retry.task_id, retry.attempt) == (second.task_id, 2)
    assert queries.dataset_status(db, d).dataset.status == "processing"
