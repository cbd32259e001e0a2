"""The API over real HTTP on loopback: tokens on every route, roles, the protocol."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from frazil.client import Client, PilotClient, ServerError
from frazil.errors import (
    AuthError,
    BadPasskey,
    ConfigError,
    Forbidden,
    NotFound,
    QuotaExceeded,
    Rejected,
    StaleAttempt,
    StoreError,
    TooLarge,
    Unreachable,
)
from frazil.store.schema import task_dependency
from frazil.wire import Beat, FileRecord, Finish, SiteInfo, Slot, Usage, encode, slot_fields
from tests.conftest import EXAMPLE

SLOT = Slot(cpu=4, gpu=1, memory=16.0, disk=50.0, time=24.0)


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_no_route_answers_without_a_valid_token(live):
    spec = httpx.get(f"{live.url}/openapi.json").json()  # the description itself is public
    assert len(spec["paths"]) > 20
    for path, methods in spec["paths"].items():
        for method in methods:
            if path == "/login":  # how one gets a token: a name and a password instead
                continue
            url = live.url + _fill(path)
            for headers in (
                {},
                {"Authorization": "Bearer frz_not-a-token"},
                {"Authorization": "Basic x"},
            ):
                r = httpx.request(method, url, headers=headers, json={})
                assert r.status_code in (401, 403), (
                    f"{method.upper()} {path} with {headers}: {r.status_code}"
                )


def test_roles(live):
    user, site = live.client(live.user), live.client(live.site)
    with pytest.raises(Forbidden, match="needs a admin token"):
        user.create_token("x", "admin")
    with pytest.raises(Forbidden, match="needs a user token"):
        site.submit(EXAMPLE.read_text())
    with pytest.raises(Forbidden, match="needs a site token"):
        user.claim("site-a", SLOT, 1)
    with pytest.raises(Forbidden, match="for 'site-b'"):
        site.register_site("site-b", SiteInfo(**slot_fields(SLOT)))
    # a valid token that may not: 403; no valid token: 401, with the scheme to use
    r = httpx.post(
        f"{live.url}/datasets", json={}, headers={"Authorization": f"Bearer {live.site}"}
    )
    assert (r.status_code, r.json()["error"]) == (403, "Forbidden")
    r = httpx.post(f"{live.url}/datasets", json={}, headers={"Authorization": "Bearer frz_x"})
    assert (r.status_code, r.headers["WWW-Authenticate"]) == (401, "Bearer")
    assert site.datasets() == []  # any token may read
    made = live.client().create_token("bob", "user")
    assert made.token.startswith("frz_") and made.role == "user"
    assert live.client(made.token).whoami().name == "bob"


def test_revoked_tokens_stop_working(live):
    made = live.client().create_token("tmp", "user")
    tmp = live.client(made.token)
    tmp.datasets()
    live.client().request("DELETE", f"/tokens/{made.id}")
    with pytest.raises(AuthError, match="revoked") as revoked:
        tmp.datasets()
    assert not isinstance(revoked.value, Forbidden)


def test_submit_and_inspect(live):
    user = live.client(live.user)
    d = user.submit(EXAMPLE.read_text(), jobs=3, alias="sim")
    view = user.dataset("sim")
    assert view.dataset.id == d and view.dataset.owner == "alice"
    assert view.counts["corsika"] == {"waiting": 3}
    assert [t.name for t in user.tasks(d, status="waiting")] == ["corsika", "nugen"] * 3
    assert len(user.jobs(d)) == 3
    assert user.config(d)["tasks"][0]["name"] == "corsika"
    assert user.act(d, "suspend", job=1, reason="look") == 6
    assert user.jobs(d, status="suspended")[0].index == 1
    assert user.act(d, "resume", job=1) == 6
    with pytest.raises(NotFound):
        user.dataset("nope")
    with pytest.raises(Rejected, match="taken"):
        user.submit(EXAMPLE.read_text(), alias="sim")


def test_submit_and_set_jobs_check_every_job_and_say_so(live):
    user = live.client(live.user)
    module = {"src": "run.sh", "args": "$eval(1 / abs($args(job) - 2500))"}  # job 2500 fails
    config = {"tasks": [{"name": "t", "trays": [{"modules": [module]}]}]}
    answer = user.request("POST", "/datasets", json={"config": config, "jobs": 2000})
    assert answer["checked"] == {
        "jobs": 2000,
        "of": 2000,
        "sampled": False,
        "summary": "checked every job (2000)",
    }
    with pytest.raises(ConfigError) as info:
        user.set_jobs(answer["id"], 4000)
    (problem,) = info.value.problems
    assert problem.path == "tasks[0].trays[0].modules[0].args"
    assert problem.message.endswith("(job 2500)")
    assert user.dataset(answer["id"]).dataset.jobs_submitted == 2000


def test_quotas_are_set_by_administrators_and_refuse_with_the_cap_named(live):
    user, admin = live.client(live.user), live.client()
    with pytest.raises(AuthError, match="needs a admin token"):
        user.set_quota("alice", jobs=10**9)
    with pytest.raises(AuthError, match="needs a admin token"):
        user.quota("alice")
    with pytest.raises(QuotaExceeded, match="at most 1000000 jobs in one dataset"):
        user.submit(EXAMPLE.read_text(), jobs=100_000_000)
    assert admin.set_quota("alice", jobs=5).overridden == ("jobs",)
    d = user.submit(EXAMPLE.read_text(), jobs=3)
    with pytest.raises(QuotaExceeded, match=r"at most 5 jobs not yet complete; 3 now, and this "
                       r"would add 3 .*frazil quota set alice --jobs N"):  # fmt: skip
        user.set_jobs(d, 6)
    held = admin.quota("alice")
    assert (held.jobs, held.dataset_jobs, encode(held.usage)) == (
        5,
        10**6,
        {"jobs": 3, "tasks": 18},
    )
    assert admin.set_quota("alice", jobs=None).overridden == ()
    user.set_jobs(d, 6)


def test_config_errors_come_back_located(live):
    bad = EXAMPLE.read_text().replace("$steering(nevents) / 4000)", "$steering(nevent) / 4000)")
    with pytest.raises(ConfigError) as info:
        live.client(live.user).submit(bad)
    (problem,) = info.value.problems
    assert problem.path == "tasks[2].requirements.time" and problem.line is not None
    assert "nevent" in problem.message
    assert live.client().datasets() == []


def test_the_site_and_pilot_protocol(live):
    user, site = live.client(live.user), live.client(live.site)
    d = user.submit(EXAMPLE.read_text(), jobs=1)
    site.register_site(
        "site-a", SiteInfo(**slot_fields(SLOT), system={"storage": "file:///tmp/elsewhere"})
    )
    claims = site.claim("site-a", SLOT, 5)
    assert {c.name for c in claims} == {"corsika", "nugen"}
    c = claims[0]
    site.record_batch_id("site-a", c.task_id, c.attempt, "local-1")
    pilot = PilotClient(live.url, c.task_id, c.attempt, c.passkey, retry_for=0)
    spec = pilot.spec()
    assert spec.trays[0].modules[0].argv[0].startswith("--type=")
    pilot.start("node1")
    pilot.heartbeat("running")
    pilot.log("stdout", "x" * 10 + "tail")
    out = FileRecord("file:///tmp/x", "output", size=3, checksum_type="sha256", checksum="ab")
    pilot.finish(Finish(Usage(wall_time=2.0), {"events": 7.0}, (out,)))
    detail = user.task(c.task_id)
    assert detail.task.status == "complete"
    assert detail.attempts[0].batch_id == "local-1" and detail.attempts[0].host == "node1"
    assert user.logs(c.task_id)[0].text.endswith("tail")
    assert {(s.task_name, s.name) for s in user.stats(d)} >= {(c.name, "events")}
    with pytest.raises(StaleAttempt):
        pilot.heartbeat()
    with pytest.raises(BadPasskey):
        PilotClient(live.url, claims[1].task_id, 1, "wrong", retry_for=0).start("n")
    other = claims[1]
    assert site.lost("site-a", other.task_id, other.attempt, "batch job vanished") == "waiting"
    assert site.lost("site-a", other.task_id, other.attempt, "again") is None
    # a site cannot say its lost batch job completed the attempt
    r = httpx.post(
        f"{live.url}/sites/site-a/tasks/{c.task_id}/attempts/{c.attempt}/lost",
        json={"reason": "x", "outcome": "complete"},
        headers={"Authorization": f"Bearer {live.site}"},
    )
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "outcome"] and "not 'complete'" in problem["msg"]


def test_a_pilot_report_past_the_caps_is_refused_and_stats_are_paged(live):
    user, site = live.client(live.user), live.client(live.site)
    d = user.submit(EXAMPLE.read_text(), jobs=1)
    site.register_site("site-a", SiteInfo(**slot_fields(SLOT)))
    c = site.claim("site-a", SLOT, 1)[0]
    pilot = PilotClient(live.url, c.task_id, c.attempt, c.passkey, retry_for=0)
    pilot.start("node1")
    flood = {f"s{i}": 1.0 for i in range(5000)}
    with pytest.raises(TooLarge, match=r"at most 1000 statistics \(\[server\] max_report_stats"):
        pilot.finish(Finish(stats=flood))
    url = f"{live.url}/pilot/tasks/{c.task_id}/attempts/{c.attempt}"
    auth = {"Authorization": f"Passkey {c.passkey}"}
    r = httpx.post(f"{url}/finish", json={"files": [{"url": "x", "movement": "output"}] * 1001},
                   headers=auth)  # fmt: skip
    assert r.status_code == 413 and "at most 1000 files" in r.json()["detail"]
    r = httpx.post(f"{url}/finish", json={"stats": {f"s{i}": 1 for i in range(10**6)}},
                   headers=auth)  # fmt: skip
    assert r.status_code == 413 and "for a request with a pilot's key" in r.json()["detail"]
    r = httpx.post(f"{url}/fail", json={"error": "e" * 100_001}, headers=auth)
    assert r.status_code == 422 and "100000 characters" in r.text
    r = httpx.post(f"{url}/finish", json={"files": [{"url": "u" * 4097, "movement": "output"}]},
                   headers=auth)  # fmt: skip
    assert r.status_code == 422 and "4096 characters" in r.text
    assert user.task(c.task_id).task.status == "processing"  # nothing was written
    pilot.finish(Finish(stats={f"s{i:02d}": float(i) for i in range(30)}))
    page = user.stats(d, limit=10, after="s04")
    assert [s.name for s in page if s.task_name == "*"] == [f"s{i:02d}" for i in range(5, 15)]


def test_a_pilot_whose_report_is_refused_fails_its_attempt_saying_why(live, tmp_path):
    from frazil.pilot.run import Pilot, PilotOptions

    module = tmp_path / "flood.py"
    module.write_text(
        "import json\n"
        "json.dump({f's{i}': i for i in range(5000)}, open('frazil_stats.json', 'w'))\n"
    )
    config = {"tasks": [{"name": "flood", "trays": [{"modules": [{"src": str(module)}]}]}]}
    user, site = live.client(live.user), live.client(live.site)
    user.submit(config, jobs=1)
    site.register_site("site-a", SiteInfo(**slot_fields(SLOT)))
    (c,) = site.claim("site-a", SLOT, 1)
    options = PilotOptions(live.url, c.task_id, c.attempt, c.passkey,
                           workdir=tmp_path / "work" / "scratch")  # fmt: skip
    assert Pilot(options).run() == 1
    detail = user.task(c.task_id)
    (attempt,) = detail.attempts
    assert attempt.outcome == "failed" and attempt.stats == {}
    assert attempt.error.startswith("the server refused the pilot's report: a report may ")
    assert "at most 1000 statistics ([server] max_report_stats), this one has 5003" in (
        attempt.error
    )


def test_metrics(live):
    user, site = live.client(live.user), live.client(live.site)
    d = user.submit(EXAMPLE.read_text(), jobs=2)
    site.claim("site-a", SLOT, 3)
    text = httpx.get(f"{live.url}/metrics", headers={"Authorization": f"Bearer {live.user}"}).text
    assert "frazil_claims_total 3.0" in text
    assert f'frazil_tasks{{dataset="{d}",status="queued"}} 3.0' in text
    assert f'frazil_tasks{{dataset="{d}",status="idle"}} 8.0' in text


def test_unknown_action_and_bad_bodies(live):
    user = live.client(live.user)
    d = user.submit(EXAMPLE.read_text(), jobs=1)
    auth = {"Authorization": f"Bearer {live.user}"}
    r = httpx.post(f"{live.url}/datasets/{d}/actions/explode", json={}, headers=auth)
    assert r.status_code == 400 and "unknown action" in r.json()["detail"]
    r = httpx.post(
        f"{live.url}/datasets",
        content=b"not json",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    body = {"config": {}, "jobs": -1, "surprise": 1}
    r = httpx.post(f"{live.url}/datasets", json=body, headers=auth)
    assert r.status_code == 422


def test_client_rides_out_an_unreachable_server():
    import time

    client = Client("http://127.0.0.1:9", "frz_x", retry_for=1.0)
    started = time.monotonic()
    with pytest.raises(
        Unreachable, match=re.escape("cannot reach the Frazil server at http://127.0.0.1:9")
    ):
        client.health()
    assert time.monotonic() - started >= 0.5


def test_batched_heartbeats(live):
    from frazil.client import send_heartbeats

    user, site = live.client(live.user), live.client(live.site)
    user.submit(EXAMPLE.read_text(), jobs=2)
    claims = site.claim("site-a", SLOT, 4)
    for c in claims[:3]:
        PilotClient(live.url, c.task_id, c.attempt, c.passkey, retry_for=0).start("n")
    beats = [Beat(c.task_id, c.attempt, c.passkey, "running") for c in claims]
    assert send_heartbeats(live.url, beats, retry_for=0) == ["ok", "ok", "ok", "stale"]
    r = httpx.post(f"{live.url}/pilot/heartbeats", json={"beats": [encode(b) for b in beats[1:]]},
                   headers={"Authorization": "Passkey not-in-the-batch"})  # fmt: skip
    assert r.status_code == 401


def test_numbers_out_of_range_answer_422_at_their_field(live):
    user = live.client(live.user)
    d = user.submit(EXAMPLE.read_text(), jobs=1)
    for path, body, method in (
        (f"/datasets/{d}/priority", {"priority": 1e308}, "PUT"),
        ("/datasets", {"config": EXAMPLE.read_text(), "priority": 2e6}, "POST"),
        ("/datasets", {"config": EXAMPLE.read_text(), "seed": 2**64}, "POST"),
    ):
        r = httpx.request(method, live.url + path, json=body,
                          headers={"Authorization": f"Bearer {live.user}"})  # fmt: skip
        assert r.status_code == 422, r.text
        (problem,) = r.json()["detail"]
        assert problem["loc"] == ["body", next(iter(body.keys() - {"config"}))]
    assert user.dataset(d).dataset.priority == 1.0


def test_an_unhandled_error_answers_500_in_the_error_shape(live):
    def broken() -> None:
        raise KeyError("a bug")

    live.server.app.add_api_route("/broken", broken)
    r = httpx.get(f"{live.url}/broken", headers={"Authorization": f"Bearer {live.user}"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "InternalError",
                        "detail": "GET /broken failed (KeyError); see the log"}  # fmt: skip
    with pytest.raises(ServerError, match=r"HTTP 500 .*GET /broken failed"):
        live.client().request("GET", "/broken")
    assert live.client().health().status == "ok"  # and the server goes on


def test_the_database_s_errors_answer_503_when_it_is_away_and_500_for_a_refused_statement(
    live, caplog
):
    def away() -> None:
        def lose_it(conn):
            conn.connection.dbapi_connection.close()  # as a server that went away would
            conn.exec_driver_sql("SELECT 1")

        live.db.transaction(lose_it)

    def orphan() -> None:
        row = {"dataset_id": 42, "task_index": 0, "depends_on": 1}
        live.db.transaction(lambda conn: conn.execute(task_dependency.insert().values(row)))

    live.server.app.add_api_route("/away", away)
    live.server.app.add_api_route("/orphan", orphan)
    caplog.set_level(logging.WARNING, logger="frazil.server.errors")
    with pytest.raises(StoreError, match=r"^the database is unavailable: "):
        live.client().request("GET", "/away")
    assert "the database is unavailable (GET /away answers 503): " in caplog.text
    r = httpx.get(f"{live.url}/orphan", headers={"Authorization": f"Bearer {live.user}"})
    assert r.status_code == 500
    detail = "GET /orphan failed (ConstraintViolated); see the log"
    assert r.json() == {"error": "InternalError", "detail": detail}
    assert "GET /orphan failed" in caplog.text and "FOREIGN KEY" in caplog.text
