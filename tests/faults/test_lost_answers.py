"""Answers lost on the way back: the work they answered is neither lost nor done twice.

The site and its pilots talk to the server process through a loopback proxy that, once,
lets a request through, waits for the server's whole answer (so the server has committed
what it answered) and then cuts the client's connection without it, killing the server or
the site first where the test says so. Each run must then end as every run does
(``check_outcome``) and without a wasted attempt, long before any timeout could have
recovered the tasks (the config's queued timeout is an hour).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.conftest import World, chain_config, check_outcome
from tests.faults.proxy import Proxy

pytestmark = pytest.mark.slow

JOBS = 3
CLAIM = r"^POST /sites/[^/]+/claim "
#: Long enough for a run of a few tasks; far shorter than any timeout that could rescue one.
RUN = 120.0


@pytest.fixture
def proxy(world: World) -> Iterator[Proxy]:
    p = Proxy(world.server.port)
    yield p
    p.close()


def config(**options: Any) -> dict[str, Any]:
    return chain_config(**{"timeouts": {"queued": "1h", "heartbeat": "1h"}, **options})


def test_a_claim_whose_server_was_killed_before_answering_gets_the_same_tasks(
    world: World, proxy: Proxy
) -> None:
    rule = proxy.lose(CLAIM, when=bool, action=lambda: world.server.kill(signal.SIGKILL))
    d = world.submit(config(), jobs=JOBS)
    world.site(server=proxy.url, pilot="single")
    world.wait(lambda: bool(rule.lost), 60, "a claim that hands out tasks")
    world.server.start()
    world.wait_done(d, timeout=RUN)
    outcome = check_outcome(world.db, d, world.storage)
    # the site's repeat of the claim got exactly what the server committed and never sent
    assert rule.passed[0] == rule.lost[0]
    assert outcome.attempts == {"complete": 2 * JOBS}, outcome


def test_a_site_killed_between_claim_and_submit_submits_its_claim_when_restarted(
    world: World, proxy: Proxy
) -> None:
    site = world.site(server=proxy.url, pilot="single", start=False)
    rule = proxy.lose(CLAIM, when=bool, action=lambda: site.kill(signal.SIGKILL))
    d = world.submit(config(), jobs=JOBS)
    site.start()
    world.wait(lambda: bool(rule.lost), 60, "a claim that hands out tasks")
    assert not site.alive
    site.start()
    world.wait_done(d, timeout=RUN)
    outcome = check_outcome(world.db, d, world.storage)
    assert rule.passed[0] == rule.lost[0]  # asked again under the saved request id
    assert outcome.attempts == {"complete": 2 * JOBS}, outcome


def test_a_site_that_lost_its_state_hands_back_what_it_never_submitted(
    world: World, proxy: Proxy
) -> None:
    site = world.site(server=proxy.url, pilot="single", start=False)
    rule = proxy.lose(CLAIM, when=bool, action=lambda: site.kill(signal.SIGKILL))
    d = world.submit(config(), jobs=JOBS)
    site.start()
    world.wait(lambda: bool(rule.lost), 60, "a claim that hands out tasks")
    (world.home / "scratch-faults" / "site-faults.json").unlink(missing_ok=True)
    site.start()
    world.wait_done(d, timeout=RUN)
    outcome = check_outcome(world.db, d, world.storage)
    held = len(rule.lost[0])
    # handed back at once, no failure counted, and run again
    assert outcome.attempts == {"complete": 2 * JOBS, "unsubmitted": held}, outcome
    assert all("never submitted" in e for e in outcome.errors), outcome.errors


def test_a_pilots_start_said_twice_is_accepted(world: World, proxy: Proxy) -> None:
    rule = proxy.lose(r"^POST /pilot/tasks/\d+/attempts/\d+/start ")
    d = world.submit(config(max_failures=1), jobs=JOBS)
    world.site(server=proxy.url, pilot="single")
    world.wait_done(d, timeout=RUN)
    outcome = check_outcome(world.db, d, world.storage)
    assert rule.lost == [{"ok": True}] and rule.passed
    assert outcome.attempts == {"complete": 2 * JOBS}, outcome


def test_a_multi_task_pilots_lost_exchange_answer_is_recovered_by_its_next_exchange(
    world: World, proxy: Proxy
) -> None:
    rule = proxy.lose(r"^POST /pilots/\d+/exchange ", when=lambda a: bool(a["tasks"]))
    d = world.submit(config(), jobs=JOBS)
    started = time.monotonic()
    world.site(server=proxy.url, pilot="multi")
    world.wait_done(d, timeout=RUN)
    outcome = check_outcome(world.db, d, world.storage)
    (lost,) = rule.lost
    assert any(a["tasks"] == lost["tasks"] for a in rule.passed), "not handed out again"
    assert outcome.attempts == {"complete": 2 * JOBS}, outcome
    assert time.monotonic() - started < RUN
