"""The database goes silent (a partition, not a refusal) in the middle of a run.

The server process reaches PostgreSQL or MariaDB through a loopback proxy that stops
forwarding without closing anything (tests/faults/tcp_proxy.py), with ``[database]`` timeouts of
a few seconds in its ``frazil.toml``. While the partition lasts, requests that need the
database answer 503 within those timeouts instead of hanging; sites and multi-task pilots
wait, say why, and carry on when it ends; the run ends with every task complete exactly once,
by its first attempt.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from frazil.client import Client
from frazil.errors import StoreError
from frazil.services.tokens import create_token
from tests.conftest import fresh_server, server_url
from tests.faults.conftest import chain_config, check_outcome, make_world, write_toml
from tests.faults.tcp_proxy import proxy_to

pytestmark = pytest.mark.slow

TIMEOUTS = {"connect_timeout": 2, "statement_timeout": 1, "read_timeout": 2}
PARTITION = 10.0
JOBS = 20


@pytest.mark.parametrize(
    "kind", [pytest.param("postgres", marks=pytest.mark.postgres),
             pytest.param("mariadb", marks=pytest.mark.mariadb)],
)  # fmt: skip
def test_a_silent_database_answers_503_in_time_and_the_run_loses_nothing(kind, tmp_path: Path):
    fresh_server(kind).dispose()  # an empty, migrated database
    url = make_url(server_url(kind))
    default_port = 5432 if kind == "postgres" else 3306
    with proxy_to(url.host or "127.0.0.1", url.port or default_port) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        write_toml(tmp_path / "frazil.toml", {"database": TIMEOUTS})
        with contextlib.contextmanager(make_world)(proxied, tmp_path) as w:
            timeouts = {"queued": "300s", "heartbeat": "300s"}
            d = w.submit(chain_config(sleep=0.2, timeouts=timeouts), jobs=JOBS)
            site = w.site()
            w.wait(lambda: w.complete_tasks(d) >= JOBS // 2, 300, "a quarter of the run")
            _, token = create_token(w.db, "asker", "user", now=time.time())
            asked: list[float] = []
            answers: list[str] = []

            def ask() -> None:
                started = time.monotonic()
                try:
                    Client(w.server.url, token, retry_for=0, timeout=60).datasets()
                    answers.append("answered")
                except StoreError as exc:
                    answers.append(str(exc))
                asked.append(time.monotonic() - started)

            proxy.partition()
            try:
                time.sleep(0.5)
                threads = [threading.Thread(target=ask) for _ in range(6)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=60)
                # past the read timeout (2 s), a reconnection's connect timeout (2 s), slack
                print(f"{kind}: answers during the partition took {sorted(asked)} s")
                assert len(asked) == 6 and max(asked) < 7.0, asked
                assert all("the database is unavailable" in a for a in answers), answers
                time.sleep(max(0.0, PARTITION - 0.5 - max(asked)))
                assert w.server.alive and site.alive, "a process died during the partition"
            finally:
                proxy.heal()
            w.wait_done(d, timeout=300)
            outcome = check_outcome(w.db, d, w.storage)
            print(f"{kind} partition of {PARTITION:.0f} s: {outcome}")
            # the partition cost no attempt: pilots and the site waited instead of failing
            assert outcome.attempts == {"complete": 2 * JOBS}, outcome
            server_log = w.server.text()
            assert server_log.count("==== start") == 1
            assert "the database is unavailable (" in server_log
