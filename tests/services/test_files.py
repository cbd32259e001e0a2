"""The temporary-file collector on a real database and real files."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path, PurePosixPath

from sqlalchemy import select

from frazil.model.records import FileRecord, SiteResources
from frazil.services import attempts, queries
from frazil.services.claim import claim
from frazil.services.files import Collected, collect_temporary, local_path, placement, unlink_below
from frazil.services.submit import submit
from frazil.store.schema import event, file
from frazil.wire import Finish
from tests.services.conftest import make_config

SITE = SiteResources(name="s", cpu=4, memory=16, disk=100, time=24)


def temp(remote: str, movement: str = "output") -> dict[str, str]:
    return {"remote": remote, "type": "job_temp", "movement": movement}


def run_all(db, now, report):
    """Run every ready task as a pilot does (spec, start, finish), reporting ``report(job)``."""
    while claims := claim(db, SITE, 10, now):
        for c in claims:
            attempts.spec(db, c.task_id, c.attempt, c.passkey, now=now)
            attempts.start(db, c.task_id, c.attempt, c.passkey, now=now)
            files = [
                FileRecord(url=url, movement="output", type=kind)
                for url, kind in report(c.job_index)
            ]
            attempts.finish(db, c.task_id, c.attempt, c.passkey, Finish(files=files), now=now)


def test_collector_deletes_declared_temporary_files_of_complete_jobs(db, tmp_path):
    now = time.time()
    root = tmp_path / "storage"
    root.mkdir()
    config = make_config("chain", 2, data=[temp(f"file://{root}/$args(task)-$args(job).tmp")])
    submit(db, config, jobs=2, now=now)
    (c,) = claim(db, SITE, 1, now)  # job 0's first task
    attempts.spec(db, c.task_id, c.attempt, c.passkey, now=now)
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=now)
    early = root / "t0-0.tmp"
    early.write_text("x")
    early_file = FileRecord(url=f"file://{early}", movement="output", type="job_temp")
    attempts.finish(db, c.task_id, c.attempt, c.passkey, Finish(files=(early_file,)), now=now)
    assert collect_temporary(db, now, [root]).deleted == 0 and early.exists()  # job not done

    def report(job):
        names = [f"t0-{job}.tmp", f"t1-{job}.tmp"]
        for n in names:
            (root / n).write_text("t")
        keep = tmp_path / f"keep-{job}"
        keep.write_text("k")
        return [(f"file://{root / n}", "job_temp") for n in names] + [(str(keep), "permanent")]

    run_all(db, now, report)  # every task reports both names; each declares its own only
    assert collect_temporary(db, now, [root]) == Collected(4, 3)
    assert not list(root.iterdir())
    assert len(list(tmp_path.glob("keep-*"))) == 2  # permanent files stay
    with db.read() as conn:
        rows = conn.execute(select(file.c.url, file.c.deleted_at, file.c.refused)).all()
    deleted = sorted(r.url for r in rows if r.deleted_at == now)
    assert deleted == sorted(f"file://{root}/t{t}-{j}.tmp" for t in (0, 1) for j in (0, 1))
    refused = sorted(r.url for r in rows if r.refused)  # another task's file, not declared
    assert refused == sorted(f"file://{root}/{n}.tmp" for n in ("t0-0", "t0-1", "t1-1"))
    assert collect_temporary(db, now, [root]) == Collected(0, 0)


def test_collector_refuses_the_servers_database_and_whatever_was_not_declared(db, tmp_path, caplog):
    """A config names the server's own database as a job-temporary output (an absolute
    ``remote``), and a task's code reports files the spec never declared: only the declared
    file under a storage root goes; every other one stays, recorded and logged as refused."""
    now = time.time()
    root = tmp_path / "storage"
    outside = tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    server_db = db.sqlite_path or tmp_path / "frazil.db"  # the real file on SQLite
    if not server_db.exists():
        server_db.write_text("the server's database")
    config = make_config("flat", 1, data=[
        temp(f"file://{root}/ok-$args(job).tmp"),
        temp(str(server_db)),
        temp(f"{outside}/out-$args(job).tmp"),
    ])  # fmt: skip
    dataset_id = submit(db, config, jobs=1, now=now)
    ok, out, undeclared = root / "ok-0.tmp", outside / "out-0.tmp", root / "undeclared"
    for f in (ok, out, undeclared):
        f.write_text("t")
    reported = [
        f"file://{ok}",  # declared, under the root: deleted
        str(server_db),  # declared by the config, but outside every root
        f"file://{server_db}",  # the same database, as a URL the spec never declared
        f"file://{out}",  # outside every root (and not declared in this form)
        f"{out}",  # declared, outside every root
        f"file://{undeclared}",  # under the root, not declared
    ]
    run_all(db, now, lambda job: [(u, "job_temp") for u in reported])
    size = server_db.stat().st_size
    with caplog.at_level(logging.WARNING, logger="frazil.services.files"):
        assert collect_temporary(db, now, [root]) == Collected(1, 5)
    assert not ok.exists()
    assert server_db.exists() and server_db.stat().st_size == size
    assert out.exists() and undeclared.exists()
    if db.sqlite_path:  # the server still works on its own database
        assert queries.dataset_status(db, dataset_id).dataset.status == "complete"
    with db.read() as conn:
        rows = {r.url: r for r in conn.execute(select(file))}
        events = conn.execute(select(event).where(event.c.action == "refused_delete")).all()
    assert rows[f"file://{ok}"].deleted_at == now and rows[f"file://{ok}"].refused is None
    refused = {u: rows[u].refused for u in reported[1:]}
    assert all(rows[u].deleted_at is None for u in refused)
    assert "outside every storage root" in refused[str(server_db)]
    assert "outside every storage root" in refused[str(out)]
    for u in (f"file://{server_db}", f"file://{out}", f"file://{undeclared}"):
        assert "does not declare it as a job_temp output" in refused[u]
    assert sorted(e.reason.split(": ")[0] for e in events) == sorted(repr(u) for u in refused)
    assert {e.dataset_id for e in events} == {dataset_id}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 5
    for u in refused:
        assert any(repr(u) in w for w in warnings), u
    assert collect_temporary(db, now, [root]) == Collected(0, 0)  # each is considered once


def test_a_storage_root_holding_the_database_still_never_deletes_it(db, tmp_path):
    """Even under a careless root, the server's own database file is kept."""
    if db.sqlite_path is None:
        return  # a server database has no file of ours to protect
    now = time.time()
    root = db.sqlite_path.parent
    submit(db, make_config("flat", 1, data=[temp(str(db.sqlite_path))]), jobs=1, now=now)
    run_all(db, now, lambda job: [(str(db.sqlite_path), "job_temp")])
    assert collect_temporary(db, now, [root]) == Collected(0, 1)
    assert db.sqlite_path.exists()
    with db.read() as conn:
        assert conn.execute(select(file.c.refused)).scalar_one() == (
            "it is the server's own database"
        )


def test_placement_and_local_paths():
    roots = [Path("/data/tmp")]
    assert placement(PurePosixPath("/data/tmp/a/b"), roots) == (roots[0], PurePosixPath("a/b"))
    assert "climbs" in placement(PurePosixPath("/data/tmp/../etc/passwd"), roots)
    assert "outside" in placement(PurePosixPath("/data/tmpx/a"), roots)
    assert "outside" in placement(PurePosixPath("/data/tmp"), roots)  # the root itself
    assert local_path("file:///a%20b/c") == PurePosixPath("/a b/c")
    assert local_path("file://otherhost/a") is None
    assert local_path("https://x/a") is None
    assert local_path("relative/a") is None


def test_no_symbolic_link_on_the_way_is_followed(tmp_path):
    root, victim = tmp_path / "root", tmp_path / "victim"
    root.mkdir()
    victim.mkdir()
    (victim / "precious").write_text("p")
    (root / "link").symlink_to(victim)
    (root / "file-link").symlink_to(victim / "precious")
    why = unlink_below(root, PurePosixPath("link/precious"), frozenset())
    assert "not a plain directory" in why and (victim / "precious").exists()
    # a link as the last part: the link goes, never its target
    assert unlink_below(root, PurePosixPath("file-link"), frozenset()) == ""
    assert not (root / "file-link").is_symlink() and (victim / "precious").exists()
    (root / "sub").mkdir()
    assert unlink_below(root, PurePosixPath("sub"), frozenset()) == "it is a directory"
    assert unlink_below(root, PurePosixPath("gone/x"), frozenset()) == ""
    st = os.stat(victim / "precious")
    (root / "hard").hardlink_to(victim / "precious")
    assert "own database" in unlink_below(
        root, PurePosixPath("hard"), frozenset({(st.st_dev, st.st_ino)})
    )
