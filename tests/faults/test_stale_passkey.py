"""A pilot whose task was reset reports with its old passkey: refused, and nothing changes.

The site's side (claims) and the pilots' side (reports) go over HTTP to the server process,
exactly as a site daemon and a pilot send them; the database is compared row by row before
and after the refused reports.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from frazil.client import Client, PilotClient
from frazil.services.tokens import create_token
from frazil.store.schema import metadata
from frazil.wire import Finish, SiteInfo, Slot, slot_fields
from tests.faults.conftest import MODULE, World, chain_config

pytestmark = pytest.mark.slow

SLOT = Slot(cpu=1, gpu=0, memory=2.0, disk=5.0, time=1.0)


def snapshot(world: World) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    with world.db.read() as conn:
        return {
            t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
            for t in metadata.sorted_tables
        }


def reports(url: str, task_id: int, attempt: int, passkey: str) -> dict[str, httpx.Response]:
    """Every report a pilot makes about its attempt, sent with ``passkey``."""
    base = f"/pilot/tasks/{task_id}/attempts/{attempt}"
    output = {"url": "file:///nowhere/gen.txt", "movement": "output", "local": "gen.txt",
              "size": 3, "checksum_type": "sha256", "checksum": "0" * 64}  # fmt: skip
    usage = {"cpu_time": 1.0, "wall_time": 2.0, "max_memory": 0.1}
    with httpx.Client(base_url=url, headers={"Authorization": f"Passkey {passkey}"}) as http:
        return {
            "spec": http.get(f"{base}/spec"),
            "start": http.post(f"{base}/start", json={"host": "stale-node"}),
            "heartbeat": http.post(f"{base}/heartbeat", json={"phase": "copying_output"}),
            "log": http.put(f"{base}/logs/stdout", json={"text": "from the stale pilot"}),
            "finish": http.post(f"{base}/finish", json={
                "usage": usage, "stats": {"value": 99.0}, "files": [output]}),
            "fail": http.post(f"{base}/fail", json={"error": "stale failure", "usage": usage}),
        }  # fmt: skip


def batch_heartbeat(url: str, task_id: int, attempt: int, passkey: str) -> httpx.Response:
    beat = {"task_id": task_id, "attempt": attempt, "passkey": passkey, "phase": "running"}
    return httpx.post(
        f"{url}/pilot/heartbeats", json={"beats": [beat]},
        headers={"Authorization": f"Passkey {passkey}"},
    )  # fmt: skip


def refused(answers: dict[str, httpx.Response]) -> dict[str, tuple[int, str]]:
    return {k: (r.status_code, r.json().get("error", "")) for k, r in answers.items()}


def test_a_reset_tasks_old_passkey_is_refused_and_changes_nothing(world: World) -> None:
    d = world.submit(chain_config(), jobs=1)
    _, token = create_token(world.db, "manual", "site", now=time.time())
    site = Client(world.server.url, token)
    system = {"storage": f"file://{world.storage}", "module": str(MODULE)}
    site.register_site("manual", SiteInfo(**slot_fields(SLOT), system=system))
    (first,) = site.claim("manual", SLOT, 1)
    task_id, old_key = first.task_id, first.passkey
    pilot = PilotClient(world.server.url, task_id, first.attempt, old_key, retry_for=0)
    assert pilot.spec().task_id == task_id
    pilot.start("node-1")
    pilot.heartbeat("running")
    pilot.log("stdout", "the first attempt's output")
    world.client.act(d, "reset", task_id=task_id, reason="reset under a running pilot")
    assert world.client.task(task_id).task.status == "waiting"

    # the task waits: every report of the old attempt is stale
    before = snapshot(world)
    answers = refused(reports(world.server.url, task_id, 1, old_key))
    assert answers == dict.fromkeys(answers, (409, "StaleAttempt")), answers
    assert batch_heartbeat(world.server.url, task_id, 1, old_key).json() == {"results": ["stale"]}
    assert snapshot(world) == before

    # claimed again and running: the old attempt is still stale, and the old passkey does
    # not open the new attempt
    (second,) = site.claim("manual", SLOT, 1)
    assert (second.task_id, second.attempt) == (task_id, 2)
    new = PilotClient(world.server.url, task_id, 2, second.passkey, retry_for=0)
    new.spec()
    new.start("node-2")
    new.heartbeat("running")
    before = snapshot(world)
    answers = refused(reports(world.server.url, task_id, 1, old_key))
    assert answers == dict.fromkeys(answers, (409, "StaleAttempt")), answers
    answers = refused(reports(world.server.url, task_id, 2, old_key))
    assert answers == dict.fromkeys(answers, (403, "BadPasskey")), answers
    assert batch_heartbeat(world.server.url, task_id, 1, old_key).json() == {"results": ["stale"]}
    beat = batch_heartbeat(world.server.url, task_id, 2, old_key)
    assert beat.json() == {"results": ["denied"]}
    assert snapshot(world) == before

    # the current pilot is unaffected, and the stale one's words are nowhere
    new.finish(Finish(stats={"value": 1.0}))
    detail = world.client.task(task_id)
    assert detail.task.status == "complete"
    assert [a.outcome for a in detail.attempts] == ["reset", "complete"]
    assert [a.host for a in detail.attempts] == ["node-1", "node-2"]
    logs = world.client.logs(task_id)
    assert [(log.attempt, log.text) for log in logs] == [(1, "the first attempt's output")]
    assert {s.name: s.total for s in world.client.stats(d)}["value"] == 1.0
