"""Malformed requests, made by hand, over real HTTP on loopback (every backend).

Each is refused with a 4xx and a JSON message that says what is wrong, and leaves nothing
behind: oversized and non-JSON bodies, wrong content types, JSON of the wrong shape, names
with NULs, direction marks, emoji and lone surrogates, numbers past what a database holds,
and path tricks in names and URLs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from frazil.config import ServerSettings
from frazil.server.limits import MAX_BODY_BYTES
from frazil.server.main import ServerThread
from tests.conftest import EXAMPLE
from tests.fuzz.conftest import Served

MODULE = {"modules": [{"src": "a.py"}]}
SMALL = {"tasks": [{"name": "a", "trays": [MODULE]}]}
SLOT = {"cpu": 4, "gpu": 1, "memory": 16.0, "disk": 50.0, "time": 24.0}


def _refused(r: httpx.Response, *codes: int, says: str = "") -> dict[str, Any]:
    """The response is one of ``codes`` (any 4xx if none), JSON, and mentions ``says``."""
    assert 400 <= r.status_code < 500 and (not codes or r.status_code in codes), (
        r.status_code, r.text[:500])  # fmt: skip
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert body.get("detail"), body
    assert says.lower() in json.dumps(body, ensure_ascii=False).lower(), (says, body)
    return dict(body)


@pytest.fixture
def unchanged(served: Served) -> Iterator[Served]:
    """``served``; at the end, its dataset, event and token tables are as they were."""
    before = served.counts()
    yield served
    assert served.counts() == before


def _raw(served: Served, method: str, path: str, body: bytes, token: str | None = None,
         content_type: str = "application/json") -> httpx.Response:  # fmt: skip
    headers = {**served.headers(token), "Content-Type": content_type}
    return served.request(method, path, content=body, headers=headers)


# -- bodies ----------------------------------------------------------------------------------


@pytest.fixture
def small_limit(served: Served) -> Iterator[Served]:
    """A second server over the same database whose bodies may be at most 4 KiB."""
    server = ServerThread(served.db, settings=ServerSettings(max_body_bytes=4096))
    server.start()
    yield Served(served.db, server.url, served.admin, served.user, served.site, served.admin_id)
    server.stop()


def test_oversized_bodies_get_413_before_anything_else(small_limit, unchanged):
    big = json.dumps({"config": EXAMPLE.read_text() * 3}).encode()
    assert len(big) > 4096
    for token in (small_limit.user, "frz_not-a-token"):
        body = _refused(_raw(small_limit, "POST", "/datasets", big, token), 413, says="4096")
        assert body["error"] == "TooLarge"

    def stream() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        for _ in range(64):
            yield b" " * 1024

    headers = {**small_limit.headers(), "Content-Type": "application/json"}
    r = httpx.post(f"{small_limit.url}/datasets", content=stream(), headers=headers, timeout=60)
    _refused(r, 413, says="larger than the limit")
    # within the limit, the same server answers as usual
    r = small_limit.request("POST", "/datasets", json={"config": SMALL, "jobs": -1})
    _refused(r, 422, says="jobs")


def test_the_default_limit_is_16_mib(served, unchanged):
    body = b'{"config": "' + b"#" * MAX_BODY_BYTES + b'"}'
    _refused(_raw(served, "POST", "/datasets", body, served.user), 413, says=str(MAX_BODY_BYTES))


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{", b'{"config": }', b"\xff\xfe{}", '{"config": "é"}'.encode("latin-1"),
     b'{"config": {}} trailing', b"[" * 100_000 + b"]" * 100_000,
     b'{"jobs": 1' + b"0" * 5000 + b"}"],
    ids=["text", "unclosed", "no-value", "utf16-bom", "latin1", "trailing", "deep", "huge-int"],
)  # fmt: skip
def test_bodies_that_are_not_json(unchanged, body):
    _refused(_raw(unchanged, "POST", "/datasets", body, unchanged.user), 400, 422)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/xml", "", "application/jsonx", "text/json"],
)  # fmt: skip
def test_bodies_must_be_declared_json(unchanged, content_type):
    body = json.dumps({"config": SMALL}).encode()
    r = _raw(unchanged, "POST", "/datasets", body, unchanged.user, content_type)
    _refused(r, 415, says="must be JSON")


def test_json_declared_with_a_charset_or_a_suffix_is_json(served):
    body = json.dumps({"config": SMALL}).encode()
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        r = _raw(served, "POST", "/datasets", body, served.user, content_type)
        assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("method", "path", "body", "says"),
    [
        ("POST", "/datasets", [], "valid dictionary"),
        ("POST", "/datasets", "config", "valid dictionary"),
        ("POST", "/datasets", None, "missing"),
        ("POST", "/datasets", {"config": 1}, "config"),
        ("POST", "/datasets", {"config": [SMALL]}, "config"),
        ("POST", "/datasets", {"config": SMALL, "jobs": "many"}, "jobs"),
        ("POST", "/datasets", {"config": SMALL, "jobs": 1.5}, "jobs"),
        ("POST", "/datasets", {"config": SMALL, "surprise": 1}, "surprise"),
        ("POST", "/datasets", {"config": SMALL, "alias": ["a"]}, "alias"),
        ("POST", "/datasets", {"config": SMALL, "group": "g" * 256}, "group"),
        ("PUT", "/datasets/sim/priority", {"priority": "high"}, "priority"),
        ("PUT", "/datasets/sim/jobs", {"jobs": {"n": 1}}, "jobs"),
        ("POST", "/datasets/sim/actions/reset", {"job": -1}, "job"),
        ("PUT", "/sites/site-a", {"cpu": 0}, "cpu"),
        ("PUT", "/sites/site-a", {"memory": "lots"}, "memory"),
        ("POST", "/sites/site-a/claim", {"limit": 0}, "limit"),
        ("POST", "/tokens", {"name": "x"}, "role"),
    ],
)
def test_json_of_the_wrong_shape(unchanged, method, path, body, says):
    r = unchanged.request(method, path, json=body)
    _refused(r, 422, says=says)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/datasets", b'{"config": {}, "priority": NaN}'),
        ("/datasets", b'{"config": {}, "priority": Infinity}'),
        ("/datasets/sim/priority", b'{"priority": -Infinity}'),
        ("/datasets/sim/priority", b'{"priority": 1e400}'),
        ("/sites/site-a", b'{"memory": Infinity}'),
        ("/sites/site-a/claim", b'{"time": NaN}'),
    ],
)
def test_numbers_json_cannot_carry_are_refused(unchanged, path, body):
    method = "PUT" if path.endswith(("priority", "site-a")) else "POST"
    _refused(_raw(unchanged, method, path, body), 422, says="finite number")


# -- names, text and numbers the database cannot keep ----------------------------------------

NAMES = ["a\x00b", "a\n", "\u202eevil", "a\u200fb", "💥", "\ud800", "../x", "a/b", "a\\b", "",
         "x" * 256, " a", "%2e%2e"]  # fmt: skip


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()  # lone surrogates travel as "\ud800" escapes


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_odd_names_are_refused(unchanged, name):
    user = unchanged.user
    body = {"config": SMALL, "alias": name}
    _refused(_raw(unchanged, "POST", "/datasets", _json_bytes(body), user), says="alias")
    config = {"tasks": [{"name": name, "trays": [MODULE]}]}
    _refused(_raw(unchanged, "POST", "/datasets", _json_bytes({"config": config}), user))
    _refused(_raw(unchanged, "POST", "/tokens", _json_bytes({"name": name, "role": "user"})))
    if name:  # "/sites/" is another route (a redirect to "/sites")
        site = quote(name.encode("utf-8", "surrogatepass"), safe="")
        _refused(unchanged.request("PUT", f"/sites/{site}", json={}))


@pytest.mark.parametrize(
    "ref",
    ["%00", "%E2%80%AE", "%F0%9F%92%A5", "%ED%A0%80", "..%2f..%2fetc%2fpasswd", "%2e%2e",
     "..%5c..%5cx", "9" * 30, "%C2%B2", "sim%0a", "sim%20", "SIM", "s%C3%ACm"],
)  # fmt: skip
def test_odd_dataset_references_in_urls(unchanged, ref):
    for method, suffix in (("GET", ""), ("GET", "/config"), ("POST", "/truncate")):
        r = unchanged.request(method, f"/datasets/{ref}{suffix}")
        _refused(r)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/tasks/{2**63}", None),
        ("GET", f"/tasks/{2**31}/logs", None),
        ("GET", f"/datasets/sim/jobs?offset={2**63}", None),
        ("GET", f"/datasets/sim/tasks?job={2**63}", None),
        ("GET", f"/datasets/sim/config?version={2**63}", None),
        ("DELETE", f"/tokens/{2**63}", None),
        ("POST", "/datasets", {"config": SMALL, "seed": 2**70}),
        ("POST", "/datasets/sim/actions/reset", {"task_id": 2**63}),
        ("POST", "/sites/site-a/demand", {"cpu": 2**70}),
        ("POST", f"/sites/site-a/tasks/{2**63}/attempts/1/batch", {"batch_id": "x"}),
        ("POST", "/sites/site-a/attempts/stale", {"attempts": [{"task_id": 2**63, "attempt": 1}]}),
    ],
)
def test_numbers_past_what_the_database_holds(unchanged, method, path, body):
    r = unchanged.request(method, path, json=body)
    if unchanged.db.backend in ("mysql", "mariadb"):
        # MariaDB compares a literal of any size with a column: nothing matches, no error
        assert r.status_code < 500, (r.status_code, r.text)
    else:
        assert r.status_code in (400, 404, 409, 422), (r.status_code, r.text)
    if r.status_code >= 400:
        _refused(r)


@pytest.mark.parametrize(
    "text", ["a\x00b", "\ud800", "\u202e💥"], ids=["nul", "surrogate", "marks"]
)
def test_free_text_is_kept_as_sent_or_refused(served, text):
    before = served.counts()
    alias = f"free{len(text)}{ord(text[0])}"
    body = {"config": SMALL, "description": text, "alias": alias}
    r = _raw(served, "POST", "/datasets", _json_bytes(body), served.user)
    if r.status_code == 201:
        assert served.request("GET", f"/datasets/{alias}").json()["dataset"]["description"] == text
    else:  # PostgreSQL keeps no NUL, and no backend keeps a lone surrogate
        _refused(r, 400, says="cannot hold")
        assert served.counts() == before


# -- configs over HTTP ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "says"),
    [
        ({"class": "m.M", "url": "http://example.org/m.py"}, "https"),
        ({"class": "m.M", "url": "ftp://example.org/m.py"}, "https"),
        ({"class": "m.M", "url": "javascript:alert(1)"}, "https"),
        ({"src": "a.py", "configs": {"../../x": 1}}, "plain name"),
        ({"src": "a.py", "configs": {"/etc/cron.d/x": 1}}, "plain name"),
    ],
)
def test_configs_that_reach_outside_are_refused(unchanged, module, says):
    config = {"tasks": [{"name": "a", "trays": [{"modules": [module]}]}]}
    body = _refused(unchanged.request("POST", "/datasets", json={"config": config}), 422, says=says)
    assert body["problems"][0]["path"].startswith("tasks[0].trays[0].modules[0]")


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"remote": "x", "local": "../../etc/passwd"}, "plain file name"),
        ({"remote": "x", "local": "/etc/passwd"}, "plain file name"),
        ({"remote": "x", "local": ".."}, "plain file name"),
        ({"remote": "../../../etc/passwd"}, "climbs"),
        ({"remote": "a/../../b"}, "climbs"),
        ({"remote": "//["}, "not a valid URL"),
        ({"remote": "http://[x]/a"}, "not a valid URL"),
    ],
)
def test_data_that_escapes_its_directory_is_refused(unchanged, data, says):
    config = {"tasks": [{"name": "a", "data": [data], "trays": [MODULE]}]}
    body = _refused(unchanged.request("POST", "/datasets", json={"config": config}), 422, says=says)
    assert body["problems"][0]["path"].startswith("tasks[0].data[0]")


@pytest.mark.parametrize(
    "text",
    ["a: &a [*a]\n", "[" * 3000 + "]" * 3000,
     "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
         f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 10)}]\n" for k in range(1, 9)),
     "tasks: [{name: a, parameters: {d: 2001-01-01}, trays: [{modules: [{src: a.py}]}]}]",
     "tasks: [{name: a, parameters: {d: !!binary /w==}, trays: [{modules: [{src: a.py}]}]}]",
     "tasks: [{name: a, parameters: {d: .nan}, trays: [{modules: [{src: a.py}]}]}]",
     "tasks: [{name: \"a\\n\", trays: [{modules: [{src: a.py}]}]}]"],
    ids=["self-alias", "deep", "bomb", "date", "binary", "nan", "newline-name"],
)  # fmt: skip
def test_config_texts_built_to_hurt_are_refused(unchanged, text):
    body = _refused(unchanged.request("POST", "/datasets", json={"config": text}), 422)
    assert body["error"] == "ConfigError"
    assert all(p["path"] or p["line"] for p in body["problems"])


# -- the pilot's side: log names and texts ---------------------------------------------------


def _attempt(served: Served) -> tuple[str, dict[str, str]]:
    site = served.headers(served.site)
    assert served.request("PUT", "/sites/site-a", json=SLOT, headers=site).status_code == 200
    claims = served.request("POST", "/sites/site-a/claim", json={"limit": 1, **SLOT}, headers=site)
    (c,) = claims.json()
    base = f"/pilot/tasks/{c['task_id']}/attempts/{c['attempt']}"
    return base, {"Authorization": f"Passkey {c['passkey']}"}


@pytest.mark.parametrize(
    "name",
    ["..", ".", "..%5c..%5cx", "%2e%2e", "a%00b", "%E2%80%AEtxt", "x" * 101, "..%2f..%2fx",
     "%2fetc%2fpasswd", "%ED%A0%80"],
)  # fmt: skip
def test_log_names_that_are_not_plain_are_refused(served, name):
    base, passkey = _attempt(served)
    r = served.request("PUT", f"{base}/logs/{name}", json={"text": "x"}, headers=passkey)
    _refused(r)
    task_id = base.split("/")[3]
    assert served.request("GET", f"/tasks/{task_id}/logs").json() == []


def test_log_and_error_texts_with_nuls_are_kept_readable(served):
    base, passkey = _attempt(served)
    r = served.request("PUT", f"{base}/logs/stdout", json={"text": "a\x00b"}, headers=passkey)
    assert r.status_code == 200, r.text
    r = served.request("POST", f"{base}/fail", json={"error": "bad\x00byte"}, headers=passkey)
    assert r.status_code == 200, r.text
    task_id = base.split("/")[3]
    (log,) = served.request("GET", f"/tasks/{task_id}/logs").json()
    assert log["text"] == "a\ufffdb"
    detail = served.request("GET", f"/tasks/{task_id}").json()
    assert detail["attempts"][0]["error"] == "bad\ufffdbyte"


def test_pilot_reports_json_cannot_carry_are_refused(served):
    base, passkey = _attempt(served)
    headers = {**passkey, "Content-Type": "application/json"}
    for body in (b'{"stats": {"events": NaN}}', b'{"usage": {"wall_time": Infinity}}'):
        r = served.request("POST", f"{base}/finish", content=body, headers=headers)
        _refused(r, 422, says="finite number")
    task_id = base.split("/")[3]
    assert served.request("GET", f"/tasks/{task_id}").json()["task"]["status"] == "queued"
