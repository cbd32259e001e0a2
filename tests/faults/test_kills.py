"""SIGKILL the server, the site daemon and pilots at random moments: nothing is lost or doubled.

Each test runs ``TASKS`` tasks (jobs of two dependent tasks, each writing an output) through
a site process with the ``local`` plugin while it kills things, then checks the run as
``check_outcome`` does: every task complete exactly once, every output on disk with its
recorded sha256, no attempt left open, counters equal to counts.
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.faults.conftest import TASKS, World, chain_config, check_outcome, pilot_pids, seed

pytestmark = pytest.mark.slow

KILLS = 12
#: The run may end before every kill was made, but not before this many of each.
AT_LEAST = 10


def _report(what: str, started: float, outcome: object) -> None:
    print(f"{what}: {time.monotonic() - started:.0f} s; {outcome}")


def test_a_server_killed_again_and_again_loses_and_doubles_nothing(world: World) -> None:
    rng = random.Random(seed())
    started = time.monotonic()
    d = world.submit(chain_config(), jobs=TASKS // 2)
    site = world.site()
    kills = 0
    while kills < KILLS and world.dataset_status(d) != "complete":
        time.sleep(rng.uniform(0.3, 3.0))
        world.server.kill(signal.SIGKILL)
        kills += 1
        time.sleep(rng.choice([0.0, 0.5, 2.0]))  # sometimes the clients find nobody there
        world.server.start()
    done_at = world.complete_tasks(d)
    assert kills == KILLS, f"the run ended after {kills} kills: raise FRAZIL_FAULT_TASKS"
    assert done_at < TASKS, "every kill came after the run"
    world.wait_done(d, timeout=600)
    outcome = check_outcome(world.db, d, world.storage)
    _report("server kills", started, outcome)
    assert site.alive, "the site daemon died"
    assert world.server.text().count("==== start") == KILLS + 1
    # a kill costs at most the attempts in flight (4 slots) and a claim in flight (4 tasks)
    wasted = sum(n for o, n in outcome.attempts.items() if o != "complete")
    assert wasted <= 8 * KILLS, outcome


def test_a_site_and_its_pilots_killed_again_and_again_lose_and_double_nothing(world: World) -> None:
    rng = random.Random(seed())
    started = time.monotonic()
    d = world.submit(chain_config(), jobs=TASKS // 2)
    site = world.site()
    site_kills = pilot_kills = 0
    while (site_kills < KILLS or pilot_kills < KILLS) and world.dataset_status(d) != "complete":
        time.sleep(rng.uniform(0.2, 1.5))
        if site_kills < KILLS and (pilot_kills >= KILLS or rng.random() < 0.5):
            site.kill(signal.SIGKILL)
            site_kills += 1
            time.sleep(rng.choice([0.0, 0.5, 1.0]))
            site.start()
        elif pilot_kills < KILLS:
            pilots = pilot_pids(world.home)
            if pilots:
                os.kill(rng.choice(pilots), signal.SIGKILL)
                pilot_kills += 1
    assert min(site_kills, pilot_kills) >= AT_LEAST, (site_kills, pilot_kills, "more tasks?")
    assert world.complete_tasks(d) < TASKS, "every kill came after the run"
    world.wait_done(d, timeout=600)
    outcome = check_outcome(world.db, d, world.storage)
    _report("site and pilot kills", started, outcome)
    # each new site took over the batch jobs of the one before, and reported the killed
    # pilots' ones (the exit code of a SIGKILL)
    assert site.text().count("==== start") == KILLS + 1
    assert "batch job(s) from before" in site.text()
    assert any("exit code 137" in e for e in outcome.errors), outcome.errors
    wasted = sum(n for o, n in outcome.attempts.items() if o != "complete")
    assert wasted <= 8 * KILLS + pilot_kills, outcome
