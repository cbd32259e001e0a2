import math

import pytest
from sqlalchemy import select, update

from frazil.errors import ConfigError, Rejected
from frazil.model.limits import PRIORITY
from frazil.model.records import SiteResources
from frazil.services import attempts, pilots, queries, sites
from frazil.services.claim import MIN_WEIGHT, claim, share_weight
from frazil.services.control import set_priority
from frazil.services.keys import hash_key
from frazil.services.submit import edit_config, submit
from frazil.store.schema import dataset, task_attempt
from frazil.wire import Slot
from tests.services.conftest import make_config

NOW = 2_000_000.0
BIG = SiteResources(name="big", cpu=8, gpu=2, memory=64, disk=500, time=48, os="RHEL_9")


def test_claim_hands_out_ready_tasks_in_job_order(db):
    d = submit(db, make_config("chain", 3), jobs=4, now=NOW)
    claims = claim(db, BIG, 10, NOW)
    assert [(c.job_index, c.name) for c in claims] == [(j, "t0") for j in range(4)]
    assert {c.attempt for c in claims} == {1}
    statuses = {t.status for t in queries.list_tasks(db, d, name="t0")}
    assert statuses == {"queued"}
    assert claim(db, BIG, 10, NOW) == []  # nothing else is ready


def test_only_the_passkey_hash_is_stored(db):
    submit(db, make_config("flat", 2), jobs=1, now=NOW)
    claims = claim(db, BIG, 2, NOW)
    with db.read() as conn:
        stored = dict(
            conn.execute(select(task_attempt.c.task_id, task_attempt.c.passkey_hash)).all()
        )
    for c in claims:
        assert stored[c.task_id] == hash_key(c.passkey) != c.passkey
    assert len({c.passkey for c in claims}) == 2


@pytest.mark.parametrize(
    ("requirements", "site", "fits"),
    [
        ({"cpu": 4}, SiteResources(name="s", cpu=2), False),
        ({"cpu": 2}, SiteResources(name="s", cpu=2), True),
        ({"gpu": 1}, SiteResources(name="s", gpu=0), False),
        ({"gpu": 1}, SiteResources(name="s", gpu=1), True),
        ({"memory": 8.0}, SiteResources(name="s", memory=4), False),
        ({"disk": 80}, SiteResources(name="s", disk=50), False),
        ({"time": 30}, SiteResources(name="s", time=24), False),
        ({"os": "RHEL_9"}, SiteResources(name="s", os="RHEL_8"), False),
        ({"os": ["RHEL_8", "RHEL_9"]}, SiteResources(name="s", os="RHEL_9"), True),
        ({"os": "RHEL_9"}, SiteResources(name="s"), False),
        ({"site": "wisc"}, SiteResources(name="desy"), False),
        ({"site": ["desy", "wisc"]}, SiteResources(name="desy"), True),
        ({"cvmfs": True}, SiteResources(name="s", attributes={"cvmfs": True}), True),
        ({"cvmfs": True}, SiteResources(name="s"), False),
        ({"avx": 2}, SiteResources(name="s", attributes={"avx": 512}), True),
    ],
)
def test_claims_only_what_fits(db, requirements, site, fits):
    submit(db, make_config("flat", 1, requirements=requirements), jobs=1, now=NOW)
    assert len(claim(db, site, 5, NOW)) == (1 if fits else 0)


def test_fair_share_by_priority(db):
    high = submit(db, make_config("flat", 1), jobs=100, now=NOW, priority=3.0)
    low = submit(db, make_config("flat", 1), jobs=100, now=NOW, priority=1.0)
    claims = claim(db, BIG, 40, NOW)
    got = {d: sum(c.dataset_id == d for c in claims) for d in (high, low)}
    assert got == {high: 30, low: 10}


def test_a_dataset_with_many_queued_gets_fewer_new(db):
    old = submit(db, make_config("flat", 1), jobs=100, now=NOW)
    claim(db, BIG, 50, NOW)  # all from old: it is the only one
    new = submit(db, make_config("flat", 1), jobs=100, now=NOW)
    claims = claim(db, BIG, 10, NOW)
    # equal priorities: the new one is served first and gets its share, the old one the rest
    assert sum(c.dataset_id == new for c in claims) >= 5
    assert claims[0].dataset_id == new
    assert {c.dataset_id for c in claims} <= {old, new}


def test_leftovers_go_to_whoever_has_work(db):
    small = submit(db, make_config("flat", 1), jobs=2, now=NOW, priority=10.0)
    big = submit(db, make_config("flat", 1), jobs=50, now=NOW, priority=1.0)
    claims = claim(db, BIG, 20, NOW)
    assert sum(c.dataset_id == small for c in claims) == 2
    assert sum(c.dataset_id == big for c in claims) == 18


def test_priority_zero_gets_only_leftovers_and_suspended_gets_nothing(db):
    zero = submit(db, make_config("flat", 1), jobs=10, now=NOW, priority=0.0)
    one = submit(db, make_config("flat", 1), jobs=3, now=NOW)
    claims = claim(db, BIG, 5, NOW)
    assert [c.dataset_id for c in claims] == [one, one, one, zero, zero]
    set_priority(db, zero, 2.0, now=NOW)
    from frazil.services.control import Scope, suspend

    suspend(db, Scope(zero), now=NOW)
    assert claim(db, BIG, 5, NOW) == []


def test_batch_limits(db):
    with pytest.raises(Rejected):
        claim(db, BIG, 0, NOW)
    with pytest.raises(Rejected):
        claim(db, BIG, 10**6, NOW)


def test_whole_jobs_for_batch_side_dags(db):
    from frazil.errors import BadPasskey
    from frazil.services import attempts
    from frazil.services.claim import RESERVATION_TTL, claim_jobs, claim_reserved

    d = submit(db, make_config("diamond"), jobs=3, now=NOW)
    (job,) = claim_jobs(db, BIG, 1, NOW)
    assert (job.dataset_id, job.job_index) == (d, 0)
    names = [t.name for t in job.tasks]
    assert names[0] == "a" and names[-1] == "d" and set(names) == {"a", "b", "c", "d"}
    a, *rest = job.tasks
    assert a.attempt == 1 and a.passkey and not a.reservation
    assert all(t.attempt == 0 and t.reservation for t in rest)
    by_name = {t.name: t for t in job.tasks}
    assert set(by_name["d"].parents) == {by_name["b"].task_id, by_name["c"].task_id}
    other = SiteResources(name="other", cpu=8, gpu=2, memory=64, disk=500, time=48, os="RHEL_9")
    assert {c.job_index for c in claim(db, other, 10, NOW)} == {1, 2}  # job 0 is not theirs
    with pytest.raises(Rejected, match="not ready"):
        claim_reserved(db, by_name["b"].task_id, by_name["b"].reservation, NOW)
    with pytest.raises(BadPasskey):
        claim_reserved(db, by_name["b"].task_id, "wrong", NOW)
    attempts.start(db, a.task_id, a.attempt, a.passkey, now=NOW)
    attempts.finish(db, a.task_id, a.attempt, a.passkey, now=NOW)
    b = claim_reserved(db, by_name["b"].task_id, by_name["b"].reservation, NOW)
    assert (b.attempt, b.name) == (1, "b")
    with pytest.raises(BadPasskey):  # a reservation is used once
        claim_reserved(db, by_name["b"].task_id, by_name["b"].reservation, NOW)
    # c waits, reserved for "big"; another site may take it once the reservation lapses
    assert claim(db, other, 10, NOW + 1) == []
    (c,) = claim(db, other, 10, NOW + RESERVATION_TTL + 1)
    assert c.name == "c"


def test_claim_jobs_skips_jobs_that_do_not_fit_or_have_started(db):
    from frazil.services.claim import claim_jobs

    submit(db, make_config("chain", 2, requirements={"gpu": 1}), jobs=2, now=NOW)
    assert claim_jobs(db, SiteResources(name="cpu-only"), 5, NOW) == []
    claim(db, BIG, 1, NOW)  # job 0's first task starts the normal way
    jobs = claim_jobs(db, BIG, 5, NOW)
    assert [j.job_index for j in jobs] == [1]


def _flat(**options):
    config = make_config("flat", 1)
    return config.model_copy(update={"options": {**config.options, **options}})


def test_numbers_out_of_range_are_refused_where_a_user_sets_them(db):
    with pytest.raises(Rejected, match=r"^priority must be a number from 0 to 1000000, got 1e\+3"):
        submit(db, make_config("flat", 1), jobs=1, now=NOW, priority=1e308)
    with pytest.raises(Rejected, match=r"^seed must be a whole number from 0 to 9223372036854775"):
        submit(db, make_config("flat", 1), jobs=1, now=NOW, seed=2**64)
    d = submit(db, make_config("flat", 1), jobs=1, now=NOW, priority=PRIORITY.high)
    for bad in (1e308, math.inf, math.nan, -1.0, PRIORITY.high * 1.01):
        with pytest.raises(Rejected, match=r"^priority must be a number from 0 to 1000000"):
            set_priority(db, d, bad, now=NOW)
    # a config (at submit or edit) may not set retry limits and timeouts past their ranges
    bad = _flat(max_failures=10**30, timeouts={"queued": "9" * 40, "heartbeat": "400d"})
    for action in (
        lambda: submit(db, bad, jobs=1, now=NOW),
        lambda: edit_config(db, d, bad, now=NOW),
    ):
        with pytest.raises(ConfigError) as caught:
            action()
        assert {p.path: p.message for p in caught.value.problems} == {
            "options.max_failures": "must be a whole number from 1 to 1000, got a 100-bit number",
            "options.timeouts.queued": "a duration must be from 0.001 s to 366 days, got "
            f"'{'9' * 40}'",
            "options.timeouts.heartbeat": "a duration must be from 0.001 s to 366 days, got '400d'",
        }
    (view,) = queries.list_datasets(db)
    assert (view.id, view.priority, view.config_version) == (d, PRIORITY.high, 1)


def test_the_fair_share_cannot_overflow_whatever_the_priorities(db):
    """Claims and pilot exchanges keep answering with the largest priorities on many
    datasets, and with rows stored before priorities were bounded."""
    big = [
        submit(db, make_config("flat", 1), jobs=10, now=NOW, priority=PRIORITY.high)
        for _ in range(40)
    ]
    tiny = submit(db, make_config("flat", 1), jobs=10, now=NOW, priority=5e-324)
    zero = submit(db, make_config("flat", 1), jobs=10, now=NOW, priority=0.0)
    with db.begin() as conn:
        conn.execute(update(dataset).where(dataset.c.id.in_(big[:2])).values(priority=1e308))
    claims = claim(db, BIG, 100, NOW)
    got = {d: sum(c.dataset_id == d for c in claims) for d in (*big, tiny, zero)}
    # each of the 40 weighs PRIORITY.high: a quota of ceil(100 / 40) = 3, served by id
    assert got == {**{d: 3 for d in big[:33]}, big[33]: 1, **{d: 0 for d in big[34:]},
                   tiny: 0, zero: 0}  # fmt: skip
    sites.register(db, SiteResources(name="site-a", cpu=8, memory=32, disk=100), now=NOW)
    pilot_id, key = pilots.create(db, "site-a", Slot(cpu=4, memory=8.0), now=NOW)
    results, tasks = pilots.exchange(db, pilot_id, key, [], limit=10, time_left=None, now=NOW)
    assert results == [] and len(tasks) == 4
    # the leftovers reach the tiny and the zero priority once the others are served
    rest = claim(db, BIG, 10_000, NOW)
    assert sum(c.dataset_id == tiny for c in rest) == sum(c.dataset_id == zero for c in rest) == 10


@pytest.mark.parametrize(
    ("priority", "weight"),
    [(0.0, 0.0), (math.nan, 0.0), (-5.0, 0.0), (5e-324, MIN_WEIGHT), (2.5, 2.5),
     (1e308, PRIORITY.high), (math.inf, PRIORITY.high)],
)  # fmt: skip
def test_share_weights_are_bounded(priority, weight):
    assert share_weight(priority) == weight


REQUEST = "r" * 40


def test_a_repeated_claim_gets_the_same_tasks_and_passkeys(db):
    d = submit(db, make_config("flat", 3), jobs=2, now=NOW)
    first = claim(db, BIG, 4, NOW, request_id=REQUEST)
    assert len(first) == 4
    # the answer was lost: the repeat hands out nothing new, and the same attempts
    again = claim(db, BIG, 4, NOW + 1, request_id=REQUEST)
    assert again == first
    assert len(queries.list_tasks(db, d, status="queued")) == 4
    with db.read() as conn:
        stored = dict(
            conn.execute(select(task_attempt.c.task_id, task_attempt.c.passkey_hash)).all()
        )
        hashes = set(conn.execute(select(task_attempt.c.request_hash)).scalars())
    assert {stored[c.task_id] for c in again} == {hash_key(c.passkey) for c in first}
    assert hashes == {hash_key(REQUEST)}  # the id itself is not stored
    # a task its pilot started meanwhile is no longer handed out by a repeat
    attempts.start(db, first[0].task_id, 1, first[0].passkey, now=NOW + 2)
    assert claim(db, BIG, 4, NOW + 3, request_id=REQUEST) == first[1:]
    # another site's repeat of the id gets nothing of this site's; a new id gets new tasks
    other = claim(db, SiteResources(name="other"), 4, NOW, request_id=REQUEST)
    assert {c.task_id for c in other}.isdisjoint(c.task_id for c in first) and len(other) == 2
    assert {c.task_id for c in claim(db, BIG, 4, NOW, request_id="n" * 40)} == set()


def test_a_request_id_must_be_long(db):
    submit(db, make_config("flat", 1), jobs=1, now=NOW)
    with pytest.raises(Rejected, match="request id"):
        claim(db, BIG, 1, NOW, request_id="short")
