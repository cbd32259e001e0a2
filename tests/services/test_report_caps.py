"""One pilot report cannot flood the database: statistics, files and names are capped.

A single-task pilot's report past a cap is refused with ``TooLarge`` naming the cap and its
setting, and writes nothing; in a multi-task pilot's exchange the report is ``refused`` and
its attempt fails with that reason, while the other reports are applied as usual.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from frazil.errors import TooLarge
from frazil.model.records import FileRecord, SiteResources
from frazil.services import attempts, pilots, queries, sites
from frazil.services.attempts import ReportCaps
from frazil.services.claim import claim
from frazil.services.submit import submit
from frazil.store.schema import file, task_stat
from frazil.wire import Failure, Finish, Report, Slot
from tests.services.conftest import make_config

NOW = 4_000_000.0
SITE = SiteResources(name="site-a", cpu=4, memory=16, disk=100)


def _rows(db, table) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _started(db, n=1):
    submit(db, make_config("flat", n), jobs=1, now=NOW)
    claims = claim(db, SITE, n, NOW)
    for c in claims:
        attempts.start(db, c.task_id, c.attempt, c.passkey, now=NOW)
    return claims


def _outputs(n: int) -> list[FileRecord]:
    return [FileRecord(url=f"file:///data/out{i}", movement="output") for i in range(n)]


def test_a_flooding_finish_is_refused_naming_the_cap_and_writes_nothing(db):
    (c,) = _started(db)
    flood = {f"s{i}": float(i) for i in range(10**6)}
    started = time.monotonic()
    with pytest.raises(TooLarge, match=r"at most 1000 statistics \(\[server\] max_report_stats\)"):
        attempts.finish(db, c.task_id, c.attempt, c.passkey, Finish(stats=flood), now=NOW)
    assert time.monotonic() - started < 2.0  # refused on the values in hand, nothing written
    with pytest.raises(TooLarge, match=r"at most 1000 files \(\[server\] max_report_files\)"):
        attempts.finish(
            db, c.task_id, c.attempt, c.passkey, Finish(files=_outputs(100_000)), now=NOW
        )
    with pytest.raises(TooLarge, match=r"name is 1 to 255 characters, not 100000: 'xxxx"):
        attempts.finish(
            db, c.task_id, c.attempt, c.passkey, Finish(stats={"x" * 100_000: 1}), now=NOW
        )
    with pytest.raises(TooLarge, match="max_report_stats"):
        attempts.fail(db, c.task_id, c.attempt, c.passkey, Failure("x", stats=flood), now=NOW)
    detail = queries.task_detail(db, c.task_id)
    assert detail.task.status == "processing" and detail.attempts[0].outcome == "open"
    assert _rows(db, task_stat) == 0 and _rows(db, file) == 0

    # within the caps (here raised by the operator) the report goes through
    caps = ReportCaps(stats=2000, files=10)
    stats = {f"s{i}": float(i) for i in range(1500)}
    attempts.finish(
        db,
        c.task_id,
        c.attempt,
        c.passkey,
        Finish(stats=stats, files=_outputs(10)),
        now=NOW,
        caps=caps,
    )
    assert queries.task_detail(db, c.task_id).task.status == "complete"
    assert (_rows(db, task_stat), _rows(db, file)) == (1500, 10)


def test_an_exchange_refuses_the_flooding_report_and_applies_the_others(db):
    submit(db, make_config("flat", 3), jobs=1, now=NOW)
    sites.register(db, SITE, now=NOW)
    slot = Slot(cpu=3, memory=16.0, disk=100.0)
    pilot_id, key = pilots.create(db, "site-a", slot, now=NOW)
    a, b, c = pilots.take(db, pilot_id, key, limit=3, time_left=None, now=NOW)

    def report(t, kind, **extra):
        return Report(kind, t["task_id"], t["attempt"], t["passkey"], **extra)

    reports = [
        report(a, "finish", stats={f"s{i}": 1.0 for i in range(10**5)}),
        report(b, "finish", stats={"events": 7.0}, files=_outputs(2)),
        report(c, "fail", error="segfault", files=(), stats={"y" * 300: 1.0}),
    ]
    results, _ = pilots.exchange(db, pilot_id, key, reports, limit=0, time_left=None, now=NOW + 1)
    assert results == ["refused", "ok", "refused"]
    flooded = queries.task_detail(db, a["task_id"])
    assert flooded.task.status == "waiting" and flooded.task.failures == 1
    (attempt,) = flooded.attempts
    assert attempt.outcome == "failed" and attempt.stats == {}
    assert "the server refused the pilot's report: a report may carry at most 1000 " in (
        attempt.error
    )
    assert "max_report_stats" in attempt.error
    (failed,) = queries.task_detail(db, c["task_id"]).attempts
    assert "name is 1 to 255 characters" in failed.error
    assert failed.error.endswith("; the pilot reported: segfault")
    assert queries.task_detail(db, b["task_id"]).task.status == "complete"
    assert (_rows(db, task_stat), _rows(db, file)) == (1, 2)
