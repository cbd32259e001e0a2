from frazil.model.records import SiteResources
from frazil.services import attempts, queries
from frazil.services.claim import claim
from frazil.services.submit import submit
from frazil.services.watchdog import timeouts_step
from tests.services.conftest import make_config

T0 = 5_000_000.0
SITE = SiteResources(name="s", cpu=4, memory=16, disk=100, time=24)


def config(**timeouts):
    c = make_config("flat", 1)
    return c.model_copy(update={"options": {"max_failures": 2, "timeouts": timeouts}})


def test_queued_too_long_is_reset(db):
    d = submit(db, config(queued="1h"), jobs=1, now=T0)
    claim(db, SITE, 1, T0)
    assert timeouts_step(db, T0 + 3599) == 0
    assert timeouts_step(db, T0 + 3601) == 1
    (t,) = queries.list_tasks(db, d)
    assert (t.status, t.failures) == ("waiting", 1)
    detail = queries.task_detail(db, t.id)
    assert detail.attempts[0].outcome == "timeout"
    assert "queued for 3601 s" in detail.attempts[0].error


def test_silent_pilot_is_reset_then_failed(db):
    d = submit(db, config(heartbeat="10m", processing="1d"), jobs=1, now=T0)
    for _ in range(2):
        (c,) = claim(db, SITE, 1, T0)
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=T0)
        attempts.heartbeat(db, c.task_id, c.attempt, c.passkey, now=T0 + 500)
        assert timeouts_step(db, T0 + 1000) == 0  # heard from 500 s ago
        assert timeouts_step(db, T0 + 1101) == 1
    (t,) = queries.list_tasks(db, d)
    assert t.status == "failed"
    assert "no heartbeat for 601 s" in queries.task_detail(db, t.id).attempts[-1].error


def test_processing_too_long_is_reset_even_with_heartbeats(db):
    d = submit(db, config(processing="2h", heartbeat="1h"), jobs=1, now=T0)
    (c,) = claim(db, SITE, 1, T0)
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=T0)
    for minute in range(0, 121, 30):
        attempts.heartbeat(db, c.task_id, c.attempt, c.passkey, now=T0 + minute * 60)
    assert timeouts_step(db, T0 + 7201) == 1
    assert queries.list_tasks(db, d)[0].status == "waiting"


def test_finished_tasks_are_left_alone(db):
    submit(db, config(queued="1s", processing="1s", heartbeat="1s"), jobs=1, now=T0)
    (c,) = claim(db, SITE, 1, T0)
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=T0)
    attempts.finish(db, c.task_id, c.attempt, c.passkey, now=T0)
    assert timeouts_step(db, T0 + 10**6) == 0
