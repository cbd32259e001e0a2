"""PostgreSQL stopped for 30 s in the middle of a run: everyone waits, says so, and goes on."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from tests.faults.conftest import TASKS, chain_config, check_outcome, make_world
from tests.faults.postgres import private_postgres

pytestmark = pytest.mark.slow

OUTAGE = 30.0


def test_a_run_rides_out_postgres_stopped_for_30_s(tmp_path: Path) -> None:
    jobs = max(1, min(TASKS, 60) // 2)
    tasks = 2 * jobs
    with private_postgres() as pg, contextlib.contextmanager(make_world)(pg.url, tmp_path) as w:
        started = time.monotonic()
        # timeouts well past the outage: a silent database must not look like silent pilots
        timeouts = {"queued": "300s", "heartbeat": "300s"}
        d = w.submit(chain_config(sleep=0.2, timeouts=timeouts), jobs=jobs)
        site = w.site()
        w.wait(lambda: w.complete_tasks(d) >= tasks // 4, 300, "a quarter of the run")
        before = w.complete_tasks(d)
        pg.stop()
        try:
            time.sleep(OUTAGE)
            assert w.server.alive and site.alive, "a daemon died with the database away"
        finally:
            pg.start()
        w.wait_done(d, timeout=300)
        outcome = check_outcome(w.db, d, w.storage)
        print(f"database outage: {time.monotonic() - started:.0f} s; {outcome}")
        assert before < tasks
        # the outage cost no attempt: pilots and the site waited instead of failing
        assert outcome.attempts == {"complete": tasks}, outcome
        server_log, site_log = w.server.text(), site.text()
        assert server_log.count("==== start") == 1 and site_log.count("==== start") == 1
        # the server said why it answered 503, and its daemons came back
        assert "the database is unavailable (" in server_log
        assert "Connection refused" in server_log or "terminating connection" in server_log
        w.wait(
            lambda: "daemon watchdog recovered after" in w.server.text(), 120,
            "the watchdog to come back (after its backoff)",
        )  # fmt: skip
        # whoever called meanwhile waited with the reason: multi-task pilots (which do the
        # talking while they run) and, if it had anything to ask, the site, which backs off
        # and says when it works again
        pilots = "".join(
            p.read_text(errors="replace") for p in (w.home / "scratch-faults").rglob("pilot.err")
        )
        assert "server answered 503 (the database is unavailable" in site_log + pilots
        assert "); retrying in" in site_log + pilots
        assert "the database is unavailable" in site_log + pilots
        if "server answered 503" in site_log:
            assert "round failed, next try in" in site_log
            assert "site faults is working again" in site_log
