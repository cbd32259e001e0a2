"""Files uploaded with configs over the API: checked, capped, kept once, and only for users."""

from __future__ import annotations

import base64
import hashlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from frazil.config import ServerSettings
from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.store import Database

CAP = 1000


@pytest.fixture
def api(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    path = tmp_path / "frazil.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    blobs = tmp_path / "blobs"
    settings = ServerSettings(blob_dir=blobs, max_blob_bytes=CAP, max_upload_bytes=2 * CAP)
    server = ServerThread(db, settings=settings).start()
    now = time.time()
    tokens = {role: create_token(db, role, role, now=now)[1] for role in ("user", "site")}
    yield server.url, tokens, blobs
    server.stop()
    db.dispose()


def put(url: str, token: str | None, content: bytes, sha: str | None = None) -> httpx.Response:
    sha = sha or hashlib.sha256(content).hexdigest()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"content": base64.b64encode(content).decode()}
    return httpx.put(f"{url}/blobs/{sha}", json=body, headers=headers)


def test_a_file_is_kept_once_under_its_checksum(api) -> None:
    url, tokens, blobs = api
    content = b"print('hello')\n"
    sha = hashlib.sha256(content).hexdigest()
    first = put(url, tokens["user"], content)
    assert first.status_code == 200 and first.json() == {
        "sha256": sha, "size": len(content), "created": True}  # fmt: skip
    again = put(url, tokens["user"], content)
    assert again.json()["created"] is False
    assert [p.name for p in blobs.iterdir()] == [sha]  # no temporary file left behind
    auth = {"Authorization": f"Bearer {tokens['site']}"}
    other = "0" * 64
    asked = httpx.post(f"{url}/blobs/missing", json={"sha256": [sha, other]}, headers=auth)
    assert asked.json() == {"missing": [other]}
    assert httpx.get(f"{url}/blobs/{sha}", headers=auth).content == content
    assert httpx.get(f"{url}/blobs/{other}", headers=auth).status_code == 404


def test_a_content_that_hashes_otherwise_is_refused(api) -> None:
    url, tokens, blobs = api
    answer = put(url, tokens["user"], b"one", sha=hashlib.sha256(b"two").hexdigest())
    assert answer.status_code == 400
    assert "sha256 is" in answer.json()["detail"]
    assert put(url, tokens["user"], b"x", sha="not-a-checksum").status_code == 400
    assert not blobs.exists() or list(blobs.iterdir()) == []


def test_a_file_over_the_cap_is_refused_naming_it(api) -> None:
    url, tokens, _ = api
    answer = put(url, tokens["user"], b"x" * (CAP + 1))
    assert answer.status_code == 413
    assert str(CAP) in answer.json()["detail"]
    assert put(url, tokens["user"], b"x" * CAP).status_code == 200


def test_uploads_need_a_user_token(api) -> None:
    url, tokens, _ = api
    assert put(url, None, b"x").status_code == 401
    assert put(url, "frz_nonsense", b"x").status_code == 401
    assert put(url, tokens["site"], b"x").status_code == 403
    assert httpx.get(f"{url}/blobs/{'0' * 64}").status_code == 401


def test_a_submission_names_only_kept_files_within_the_total(api) -> None:
    url, tokens, _ = api
    auth = {"Authorization": f"Bearer {tokens['user']}"}
    config = {"tasks": [{"name": "a", "trays": [{"modules": [{"src": "a.py"}]}]}]}
    shas = []
    for n in range(3):
        content = bytes([n]) * CAP
        assert put(url, tokens["user"], content).status_code == 200
        shas.append(hashlib.sha256(content).hexdigest())

    def submit(uploads: dict[str, str]) -> httpx.Response:
        body = {"config": config, "uploads": uploads}
        return httpx.post(f"{url}/datasets", json=body, headers=auth, timeout=60)

    missing = submit({"a.py": "1" * 64})
    assert missing.status_code == 404 and "upload it first" in missing.json()["detail"]
    over = submit({"a.py": shas[0], "b.py": shas[1], "c.py": shas[2]})
    assert over.status_code == 413 and f"{3 * CAP} bytes" in over.json()["detail"]
    climbing = submit({"../a.py": shas[0]})
    assert climbing.status_code == 400
    assert httpx.get(f"{url}/datasets", headers=auth).json() == []
    assert submit({"a.py": shas[0]}).status_code == 201
