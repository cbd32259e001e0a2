"""Statistics: per task name and per dataset, aggregated in SQL.

Standard deviations come from the sum of squares (the same SQL on every backend; SQLite
has no ``stddev``): ``sqrt((Σx² - (Σx)²/n) / (n - 1))``.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, select

from frazil.model.records import StatSummary
from frazil.services.submit import find_dataset
from frazil.store.db import Database
from frazil.store.schema import task_stat


def dataset_stats(
    db: Database, ref: int | str, *, task_name: str | None = None
) -> list[StatSummary]:
    """Every statistic of a dataset's attempts, per task name (and ``*`` for all tasks)."""
    with db.read() as conn:
        dataset_id = find_dataset(conn, ref)
        where = [task_stat.c.dataset_id == dataset_id]
        if task_name is not None:
            where.append(task_stat.c.task_name == task_name)
        columns = (
            func.count().label("n"),
            func.sum(task_stat.c.value).label("total"),
            func.sum(task_stat.c.value * task_stat.c.value).label("squares"),
            func.min(task_stat.c.value).label("lo"),
            func.max(task_stat.c.value).label("hi"),
        )
        per_task = conn.execute(
            select(task_stat.c.task_name, task_stat.c.name, *columns)
            .where(*where)
            .group_by(task_stat.c.task_name, task_stat.c.name)
            .order_by(task_stat.c.task_name, task_stat.c.name)
        ).all()
        overall = conn.execute(
            select(task_stat.c.name, *columns)
            .where(*where)
            .group_by(task_stat.c.name)
            .order_by(task_stat.c.name)
        ).all()
    out = [_summary(r.task_name, r) for r in per_task]
    if task_name is None:
        out += [_summary("*", r) for r in overall]
    return out


def _summary(task_name: str, r: Any) -> StatSummary:
    n = int(r.n)
    total = float(r.total)
    squares = float(r.squares)
    mean = total / n
    variance = (squares - total * total / n) / (n - 1) if n > 1 else 0.0
    return StatSummary(
        task_name=task_name,
        name=r.name,
        count=n,
        total=total,
        mean=mean,
        stddev=math.sqrt(max(variance, 0.0)),
        minimum=float(r.lo),
        maximum=float(r.hi),
    )
