"""Deleting a dataset: the dataset and every row of its own, in one transaction.

Only its owner (the name of the token that submitted it) or an administrator may delete a
dataset. What goes with it: its config versions and their searchable rows
(``config_tray``, ``config_module``, ``config_parameter``), its DAG, jobs, tasks, attempts,
statistics, logs, file records and runs. What stays: the audit trail (events keep the
dataset's id, and the deletion adds one), the software environments that configs share,
and files on storage (their records are forgotten; outputs stay where they were written).

A pilot still running a task of a deleted dataset is told that its attempt is no longer
current when it next reports (``StaleAttempt``), and the site cancels its batch job as it
does for any stale attempt. A deleted dataset's jobs stop counting against its owner's quota.
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, Connection, Table, delete, select

from frazil.errors import Forbidden
from frazil.services.datasets import find_dataset
from frazil.services.transitions import record_event
from frazil.store.db import Database, locks_rows
from frazil.store.schema import (
    config_module,
    config_parameter,
    config_tray,
    dataset,
    dataset_config,
    file,
    job,
    run,
    task,
    task_attempt,
    task_dependency,
    task_log,
    task_stat,
)
from frazil.wire import DatasetDeleted

log = logging.getLogger(__name__)


def delete_dataset(
    db: Database, ref: int | str, *, caller: str, admin: bool, now: float, actor: str,
    reason: str = "",
) -> DatasetDeleted:  # fmt: skip
    """Delete a dataset and every row that belongs to it; ``Forbidden`` unless ``caller``
    (a token's name) owns it or ``admin``. One event records it, with ``reason``."""

    def transaction(conn: Connection) -> DatasetDeleted:
        dataset_id = find_dataset(conn, ref)
        stmt = select(dataset).where(dataset.c.id == dataset_id)
        if locks_rows(conn):  # edits, set-jobs and the materializer wait for the deletion
            stmt = stmt.with_for_update()
        d = conn.execute(stmt).one()
        named = f"dataset {dataset_id}{f' ({d.alias})' if d.alias else ''}"
        if not admin and d.owner != caller:
            raise Forbidden(
                f"{named} belongs to {d.owner!r}: only its owner or an administrator may delete it"
            )
        if locks_rows(conn):  # claims and reports of its tasks wait, then find them gone
            conn.execute(select(task.c.id).where(task.c.dataset_id == dataset_id).with_for_update())
        removed = _remove(conn, dataset_id)
        said = (
            f"{named} of {d.owner or 'nobody'}: {removed['job']} jobs, {removed['task']} "
            f"tasks, {removed['task_attempt']} attempts"
        )
        record_event(
            conn, now, actor, "dataset", str(dataset_id), "delete", dataset_id=dataset_id,
            old=d.status, count=removed["job"], reason=f"{said}{': ' if reason else ''}{reason}",
        )  # fmt: skip
        return DatasetDeleted(
            dataset_id, d.alias, removed["job"], removed["task"], removed["task_attempt"]
        )

    done = db.transaction(transaction)
    log.info("%s deleted dataset %d (%d jobs, %d tasks)", actor, done.id, done.jobs, done.tasks)
    return done


def _remove(conn: Connection, dataset_id: int) -> dict[str, int]:
    """Delete the dataset's rows, children before parents; how many rows left each table."""
    tasks = select(task.c.id).where(task.c.dataset_id == dataset_id)
    attempts = select(task_attempt.c.id).where(task_attempt.c.task_id.in_(tasks))
    configs = select(dataset_config.c.id).where(dataset_config.c.dataset_id == dataset_id)
    trays = select(config_tray.c.id).where(config_tray.c.config_id.in_(configs))
    steps: list[tuple[Table, ColumnElement[bool]]] = [
        # the work: what hangs off attempts, the attempts, the tasks, the jobs
        (task_log, task_log.c.task_id.in_(tasks)),
        (task_stat, task_stat.c.attempt_id.in_(attempts)),
        (task_stat, task_stat.c.dataset_id == dataset_id),
        (file, file.c.dataset_id == dataset_id),
        (task_attempt, task_attempt.c.task_id.in_(tasks)),
        (task, task.c.dataset_id == dataset_id),
        (job, job.c.dataset_id == dataset_id),
        (task_dependency, task_dependency.c.dataset_id == dataset_id),
        (run, run.c.dataset_id == dataset_id),
        # the config: the searchable rows of every version, then the versions
        (config_parameter, config_parameter.c.config_id.in_(configs)),
        (config_module, config_module.c.tray_id.in_(trays)),
        (config_tray, config_tray.c.config_id.in_(configs)),
        (dataset_config, dataset_config.c.dataset_id == dataset_id),
        (dataset, dataset.c.id == dataset_id),
    ]
    removed: dict[str, int] = {}
    for table, where in steps:
        result = conn.execute(delete(table).where(where))
        removed[table.name] = removed.get(table.name, 0) + max(result.rowcount, 0)
    return removed
