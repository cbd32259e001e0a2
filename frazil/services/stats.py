"""Statistics: per task name and per dataset, aggregated in SQL, a page of names at a time.

A page holds up to ``limit`` statistic names, in the database's order, after the name
``after`` (the last one of the previous page): for each, its figures over the whole dataset
(task name ``*``) and then per task name. The names come from an index scan that stops after
the page, so a page costs the same in a dataset of ten statistics or of millions.

Standard deviations come from the sum of squares (the same SQL on every backend; SQLite
has no ``stddev``): ``sqrt((Σx² - (Σx)²/n) / (n - 1))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from frazil.model.records import StatSummary
from frazil.services.datasets import find_dataset
from frazil.store.db import Database
from frazil.store.schema import task_stat

#: Statistic names per page, by default and at most.
PAGE = 100
MAX_PAGE = 10_000


def dataset_stats(
    db: Database, ref: int | str, *, task_name: str | None = None, limit: int = PAGE,
    after: str | None = None,
) -> list[StatSummary]:  # fmt: skip
    """A page of a dataset's statistics: for each of the next ``limit`` names after
    ``after``, its figures over all tasks (``*``, unless ``task_name`` is given) and per
    task name."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"a page holds 1 to {MAX_PAGE} statistics, not {limit}")
    with db.read() as conn:
        dataset_id = find_dataset(conn, ref)
        where = [task_stat.c.dataset_id == dataset_id]
        if task_name is not None:
            where.append(task_stat.c.task_name == task_name)
        page = select(task_stat.c.name).where(*where).group_by(task_stat.c.name)
        if after is not None:
            page = page.where(task_stat.c.name > after)
        names = list(conn.scalars(page.order_by(task_stat.c.name).limit(limit)))
        if not names:
            return []
        where.append(task_stat.c.name.in_(names))
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
            .group_by(task_stat.c.name, task_stat.c.task_name)
        ).all()
        overall: Sequence[Any] = []
        if task_name is None:
            overall = conn.execute(
                select(task_stat.c.name, *columns).where(*where).group_by(task_stat.c.name)
            ).all()
    rows: dict[str, list[StatSummary]] = {name: [] for name in names}
    for r in overall:
        rows.setdefault(r.name, []).append(_summary("*", r))
    for r in sorted(per_task, key=lambda r: r.task_name):
        rows.setdefault(r.name, []).append(_summary(r.task_name, r))
    return [s for summaries in rows.values() for s in summaries]


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
