"""Multi-task pilots on every backend: what they are handed, their reports, their end."""

import pytest

from frazil.errors import BadPasskey, NotFound, StaleAttempt
from frazil.model.records import SiteResources
from frazil.model.states import TaskStatus
from frazil.services import attempts, pilot_tasks, pilots, queries, sites
from frazil.services.claim import claim
from frazil.services.submit import submit
from frazil.wire import Report, Slot
from tests.conftest import store_unchecked
from tests.services.conftest import make_config

NOW = 3_000_000.0


def _setup(db, shape="flat", n=3, jobs=2, slot=None, **extra):
    d = submit(db, make_config(shape, n, **extra), jobs=jobs, now=NOW)
    sites.register(db, SiteResources(name="site-a", cpu=8, memory=32, disk=100), now=NOW,
                   info={"system": {"where": "here"}})  # fmt: skip
    pilot_id, key = pilots.create(db, "site-a", slot or Slot(cpu=2), now=NOW)
    return d, pilot_id, key


def _done(t, kind="finish", **extra):
    return Report(kind, t["task_id"], t["attempt"], t["passkey"], **extra)


def test_a_pilot_gets_started_tasks_with_specs_up_to_what_it_holds(db):
    _d, pilot_id, key = _setup(db, n=3, jobs=2)
    tasks = pilots.take(db, pilot_id, key, limit=10, time_left=None, now=NOW, host="node7")
    assert len(tasks) == 2  # 2 cores, 1 core per task
    for t in tasks:
        assert t["spec"]["task_id"] == t["task_id"] and t["spec"]["trays"]
        detail = queries.task_detail(db, t["task_id"])
        assert detail.task.status == TaskStatus.PROCESSING.value
        (a,) = detail.attempts
        assert a.host == "node7" and a.started_at == NOW and a.pilot_id == pilot_id
    # full: nothing more until a report frees a core
    assert pilots.take(db, pilot_id, key, limit=10, time_left=None, now=NOW) == []
    assert pilots.report(db, pilot_id, key, [_done(tasks[0])], now=NOW + 1) == ["ok"]
    (third,) = pilots.take(db, pilot_id, key, limit=10, time_left=None, now=NOW + 1)
    assert third["task_id"] not in {t["task_id"] for t in tasks}
    assert queries.task_detail(db, tasks[0]["task_id"]).task.status == "complete"


def test_tasks_that_need_more_than_is_left_are_not_handed_out(db):
    _d, pilot_id, key = _setup(
        db, n=2, jobs=1, slot=Slot(cpu=4, memory=5.0), requirements={"memory": 3.0}
    )
    assert len(pilots.take(db, pilot_id, key, limit=10, time_left=None, now=NOW)) == 1
    # walltime left matters too
    _d2, p2, k2 = _setup(db, n=1, jobs=1, requirements={"time": 2.0})
    assert pilots.take(db, p2, k2, limit=5, time_left=1.0, now=NOW) == []
    assert len(pilots.take(db, p2, k2, limit=5, time_left=3.0, now=NOW)) == 1


def test_a_chain_is_released_to_the_pilot_that_reports(db):
    d, pilot_id, key = _setup(db, shape="chain", n=4, jobs=1)
    done = []
    for _ in range(4):
        (t,) = pilots.take(db, pilot_id, key, limit=2, time_left=None, now=NOW)
        assert pilots.report(db, pilot_id, key, [_done(t)], now=NOW) == ["ok"]
        done.append(queries.task_detail(db, t["task_id"]).task.name)
    assert done == ["t0", "t1", "t2", "t3"]
    assert queries.dataset_status(db, d).dataset.status == "complete"


def test_bad_keys_and_foreign_or_stale_reports_change_nothing(db):
    _d, pilot_id, key = _setup(db, n=2, jobs=1)
    with pytest.raises(BadPasskey):
        pilots.take(db, pilot_id, "wrong", limit=1, time_left=None, now=NOW)
    (mine,) = pilots.take(db, pilot_id, key, limit=1, time_left=None, now=NOW)
    # a task claimed by a site, not by this pilot
    (other,) = claim(db, SiteResources(name="site-a"), 1, NOW)
    foreign = Report("finish", other.task_id, other.attempt, other.passkey)
    wrong = Report("finish", mine["task_id"], mine["attempt"], "not-the-passkey")
    assert pilots.report(db, pilot_id, key, [foreign, wrong], now=NOW) == ["denied", "denied"]
    assert queries.task_detail(db, other.task_id).task.status == "queued"
    assert queries.task_detail(db, mine["task_id"]).task.status == "processing"
    assert pilots.report(db, pilot_id, key, [_done(mine)], now=NOW) == ["ok"]
    assert pilots.report(db, pilot_id, key, [_done(mine)], now=NOW) == ["stale"]  # said twice


def test_failures_and_logs_follow_the_usual_rules(db):
    _d, pilot_id, key = _setup(db, n=1, jobs=1)
    (t,) = pilots.take(db, pilot_id, key, limit=1, time_left=None, now=NOW)
    early = _done(t, "log", logs={"stdout": "early", "stderr": "kept"})
    failed = _done(t, "fail", error="boom", logs={"stdout": "hello", "pilot": "p\0ilot"})
    assert pilots.report(db, pilot_id, key, [early, failed], now=NOW) == ["ok", "ok"]
    detail = queries.task_detail(db, t["task_id"])
    assert detail.task.status == "waiting" and detail.task.failures == 1
    assert "boom" in (detail.attempts[0].error or "")
    logs = {x.name: x.text for x in queries.task_logs(db, t["task_id"])}
    # a log sent again replaces the earlier one; the others are added or kept
    assert logs == {"stdout": "hello", "stderr": "kept", "pilot": "p\ufffdilot"}


def test_a_pilot_that_ended_holding_tasks_hands_them_back(db):
    _d, pilot_id, key = _setup(db, n=2, jobs=1)
    held = pilots.take(db, pilot_id, key, limit=2, time_left=None, now=NOW)
    assert len(held) == 2
    with pytest.raises(NotFound):
        pilots.end(db, pilot_id, now=NOW, reason="x", site_name="another-site")
    assert pilots.end(db, pilot_id, now=NOW, reason="batch job vanished", site_name="site-a") == 2
    for t in held:
        detail = queries.task_detail(db, t["task_id"])
        assert detail.task.status == "waiting" and detail.task.failures == 1
        assert "batch job vanished" in (detail.attempts[0].error or "")
    # an ended pilot gets nothing and its late reports are refused
    with pytest.raises(StaleAttempt):
        pilots.take(db, pilot_id, key, limit=1, time_left=None, now=NOW)
    with pytest.raises(StaleAttempt):
        pilots.report(db, pilot_id, key, [_done(held[0])], now=NOW)
    assert pilots.end(db, pilot_id, now=NOW, reason="again", site_name="site-a") == 0
    (row,) = pilots.list_pilots(db, "site-a")
    assert row.state == "ended" and row.tasks == 2 and row.running == 0
    assert not hasattr(row, "key_hash")


def test_demand_counts_the_waiting_tasks_that_fit(db):
    _d, _, _ = _setup(db, n=3, jobs=2, requirements={"gpu": 1})
    assert pilots.demand(db, SiteResources(name="site-a", gpu=1), now=NOW) == 6
    assert pilots.demand(db, SiteResources(name="site-a", gpu=0), now=NOW) == 0
    assert pilots.demand(db, SiteResources(name="site-a", gpu=1), now=NOW, cap=4) == 4


def test_a_stale_attempt_of_a_pilot_task_is_refused_by_the_single_task_routes_too(db):
    _d, pilot_id, key = _setup(db, n=1, jobs=1)
    (t,) = pilots.take(db, pilot_id, key, limit=1, time_left=None, now=NOW)
    attempts.heartbeat(db, t["task_id"], t["attempt"], t["passkey"], now=NOW + 5)
    with pytest.raises(BadPasskey):
        attempts.heartbeat(db, t["task_id"], t["attempt"], "nope", now=NOW + 5)


def test_a_repeated_exchange_gets_the_tasks_the_lost_answer_held(db):
    _d, pilot_id, key = _setup(db, n=3, jobs=2)
    request = "x" * 43
    (t,) = pilots.take(db, pilot_id, key, limit=1, time_left=None, now=NOW)
    results, first = pilots.exchange(
        db, pilot_id, key, [_done(t)], limit=2, time_left=None, now=NOW + 1, request_id=request
    )
    assert results == ["ok"] and len(first) == 2
    # the answer was lost: the repeat applies nothing twice and hands out the same two
    results, again = pilots.exchange(
        db, pilot_id, key, [_done(t)], limit=2, time_left=None, now=NOW + 2, request_id=request
    )
    assert results == ["stale"] and again == first
    assert queries.task_detail(db, t["task_id"]).task.status == "complete"
    (row,) = pilots.list_pilots(db, "site-a")
    assert row.tasks == 3  # handed out once
    # the pilot runs them with the passkeys of the repeat
    assert pilots.report(db, pilot_id, key, [_done(x) for x in again], now=NOW + 3) == ["ok"] * 2
    # while the first request still waits for work, it hands out nothing new to nobody
    assert (
        pilots.take(db, pilot_id, key, limit=2, time_left=None, now=NOW + 4, request_id=request)
        == []
    )
    assert len(pilots.take(db, pilot_id, key, limit=2, time_left=None, now=NOW + 4)) == 2


POISON = "$eval(1/($args(job)-5))"  # fails for job 5 alone, wherever it runs


def test_a_task_whose_spec_fails_fails_alone_while_the_reports_stand(db):
    d, pilot_id, key = _setup(db, n=1, jobs=8, slot=Slot(cpu=3, memory=8.0))
    store_unchecked(
        db, d, make_config("flat", 1, trays=[{"modules": [{"src": "run.sh", "args": POISON}]}])
    )
    running = pilots.take(db, pilot_id, key, limit=3, time_left=None, now=NOW)
    assert sorted(t["spec"]["job"] for t in running) == [0, 1, 2]
    # three completions, and the next three tasks handed out include job 5's
    results, handed = pilots.exchange(
        db, pilot_id, key, [_done(t) for t in running], limit=3, time_left=None, now=NOW + 1
    )
    assert results == ["ok"] * 3
    for t in running:
        assert queries.task_detail(db, t["task_id"]).task.status == "complete"
    assert sorted(t["spec"]["job"] for t in handed) == [3, 4]
    (bad,) = queries.list_tasks(db, d, job=5)
    detail = queries.task_detail(db, bad.id)
    # failed at once (max_failures is 3), with the located error and no traceback
    assert (detail.task.status, detail.task.failures, detail.task.attempts) == ("failed", 1, 1)
    (a,) = detail.attempts
    assert a.outcome == "failed" and a.error == (
        "the task's spec cannot be resolved: tasks[0].trays[0].modules[0].args: division by "
        f"zero in {POISON!r} at column 1"
    )
    # the rest of the dataset goes on
    results, more = pilots.exchange(
        db, pilot_id, key, [_done(t) for t in handed], limit=3, time_left=None, now=NOW + 2
    )
    assert results == ["ok", "ok"] and sorted(t["spec"]["job"] for t in more) == [6, 7]
    pilots.report(db, pilot_id, key, [_done(t) for t in more], now=NOW + 3)
    view = queries.dataset_status(db, d)
    assert (view.dataset.jobs_complete, view.dataset.jobs_failed) == (7, 1)


def test_a_spec_that_fails_with_this_sites_values_retries(db):
    d, pilot_id, key = _setup(db, n=1, jobs=1)
    bad = make_config(
        "flat", 1, trays=[{"modules": [{"src": "run.sh", "args": "$system(missing)"}]}]
    )
    store_unchecked(db, d, bad)
    assert pilots.take(db, pilot_id, key, limit=1, time_left=None, now=NOW) == []
    (t,) = queries.list_tasks(db, d)
    detail = queries.task_detail(db, t.id)
    assert (detail.task.status, detail.task.failures) == ("waiting", 1)
    assert "no system value 'missing'" in (detail.attempts[0].error or "")


def test_reports_stand_when_handing_out_fails_unexpectedly(db, monkeypatch):
    _d, pilot_id, key = _setup(db, n=1, jobs=3)
    (t,) = pilots.take(db, pilot_id, key, limit=1, time_left=None, now=NOW)

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug in handing out")

    monkeypatch.setattr(pilot_tasks.specs, "resolve_texts", broken)
    results, tasks = pilots.exchange(
        db, pilot_id, key, [_done(t)], limit=2, time_left=None, now=NOW + 1
    )
    assert (results, tasks) == (["ok"], [])
    assert queries.task_detail(db, t["task_id"]).task.status == "complete"
    with pytest.raises(RuntimeError):  # with no reports to save, the error is the answer
        pilots.take(db, pilot_id, key, limit=2, time_left=None, now=NOW + 2)
