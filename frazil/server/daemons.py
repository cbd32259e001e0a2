"""The server's daemons, each a ``step(now)``.

- materializer: makes the jobs that datasets still lack, a chunk at a time;
- watchdog: resets tasks past their queued, processing or heartbeat timeouts;
- repair: recounts job and dataset counters of datasets at work from their tasks (a safety
  net: the counters are kept in the same transactions as the changes);
- collector (the seeds' soapdh): deletes the job-temporary files of complete jobs and the
  dataset-temporary files of complete datasets, and marks them deleted.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy import Connection, and_, func, or_, select, update

from frazil.model.states import DatasetStatus, JobStatus
from frazil.server.supervisor import Daemon
from frazil.services.materialize import materialize_step
from frazil.services.recount import recount, recount_totals
from frazil.services.watchdog import timeouts_step
from frazil.store.db import Database
from frazil.store.schema import dataset, file, job, task

log = logging.getLogger(__name__)


def repair_step(db: Database, now: float) -> int:
    """Recount every dataset still at work; returns how many were recounted."""
    with db.read() as conn:
        ids = [
            r.id
            for r in conn.execute(
                select(dataset.c.id).where(dataset.c.status != DatasetStatus.COMPLETE.value)
            )
        ]
    for dataset_id in ids:
        # a slice of jobs per transaction: bounded memory, and the write lock is let go
        # between slices (a whole 10^6-task dataset at once held it for seconds)
        with db.read() as conn:
            top = conn.execute(
                select(func.max(job.c.job_index)).where(job.c.dataset_id == dataset_id)
            ).scalar_one()
        for start in range(0, (top if top is not None else -1) + 1, REPAIR_JOBS):

            def part(conn: Connection, dataset_id: int = dataset_id, start: int = start) -> None:
                window = (start, start + REPAIR_JOBS)
                recount(conn, dataset_id, now, "daemon:repair", job_range=window, totals=False)

            db.transaction(part)

        def totals(conn: Connection, dataset_id: int = dataset_id) -> None:
            recount_totals(conn, dataset_id, now, "daemon:repair")

        db.transaction(totals)
    return len(ids)


#: Jobs recounted per transaction by the repair daemon.
REPAIR_JOBS = 5_000


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and url.startswith("/"):
        return Path(url)
    return None  # other protocols: not this collector's to delete (yet)


def collect_step(db: Database, now: float, *, limit: int = 1000) -> int:
    """Delete temporary files whose job (or dataset) is complete; returns how many."""
    with db.read() as conn:
        rows = conn.execute(
            select(file.c.id, file.c.url)
            .select_from(
                file.join(task, task.c.id == file.c.task_id)
                .join(
                    job,
                    and_(
                        job.c.dataset_id == task.c.dataset_id, job.c.job_index == task.c.job_index
                    ),
                )
                .join(dataset, dataset.c.id == file.c.dataset_id)
            )
            .where(
                file.c.deleted_at.is_(None),
                file.c.movement != "input",
                or_(
                    and_(file.c.type == "job_temp", job.c.status == JobStatus.COMPLETE.value),
                    and_(
                        file.c.type == "dataset_temp",
                        dataset.c.status == DatasetStatus.COMPLETE.value,
                    ),
                ),
            )
            .limit(limit)
        ).all()
    done = []
    for r in rows:
        path = _local_path(r.url)
        if path is None:
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot delete temporary file %r: %s", r.url, exc)
            continue
        done.append(r.id)

    def mark(conn: Connection) -> None:
        conn.execute(update(file).where(file.c.id.in_(done)).values(deleted_at=now))

    if done:
        db.transaction(mark)
        log.info("deleted %d temporary file(s)", len(done))
    return len(done)


def server_daemons(db: Database, *, fast: bool = False) -> list[Daemon]:
    """The daemons of ``frazil server`` (``fast``: short intervals, for demos and tests)."""
    scale = 0.1 if fast else 1.0
    return [
        Daemon("materializer", lambda now: materialize_step(db, now), 5.0 * scale),
        Daemon("watchdog", lambda now: timeouts_step(db, now), 30.0 * scale),
        Daemon("repair", lambda now: repair_step(db, now), 600.0 * scale),
        Daemon("collector", lambda now: collect_step(db, now), 60.0 * scale),
    ]
