"""The resolved spec of an attempt: its task of its job with the site's ``$system()`` values,
the checksums recorded for its inputs, and the files uploaded with its config in place of the
paths that named them (``frazil.model.uploads.pin``). Resolved once, when the attempt first
asks (or is handed to a multi-task pilot), and stored with the attempt as it ran.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from frazil.errors import SpecError
from frazil.model.resolve import JobInfo, resolve_at_site
from frazil.model.uploads import pin
from frazil.services.datasets import config_and_uploads
from frazil.services.transitions import TaskRow
from frazil.store.prepared import prepared
from frazil.store.schema import dataset, file, site, task_attempt
from frazil.wire import encode


@dataclass(frozen=True)
class Target:
    """Which attempt of which task of which job, under which config version."""

    task_id: int
    attempt: int
    dataset_id: int
    job_index: int
    task_index: int
    config_version: int


def site_system(conn: Connection, name: str) -> dict[str, Any]:
    """The ``$system()`` values a site registered."""
    stmt = prepared("site_info", lambda: select(site.c.info).where(site.c.name == bindparam("p")))
    registered = conn.execute(stmt, {"p": name}).first()
    values: dict[str, Any] = json.loads(registered.info).get("system", {}) if registered else {}
    return values


def spec_in(
    conn: Connection, row: TaskRow, a: Any, system: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The spec of an attempt row already checked, resolved and stored the first time."""
    if a.spec is None:
        values = site_system(conn, a.site) if system is None else system
        target = Target(
            row.id, row.attempts, row.dataset_id, row.job_index, row.task_index, a.config_version
        )
        (text,) = resolve_texts(conn, [target], values)
        if isinstance(text, SpecError):
            raise text
        conn.execute(update(task_attempt).where(task_attempt.c.id == a.id).values(spec=text))
    else:
        text = a.spec
    stored: dict[str, Any] = json.loads(text)
    return stored


def resolve_texts(
    conn: Connection, targets: Sequence[Target], system: Mapping[str, Any]
) -> list[str | SpecError]:
    """The resolved specs of ``targets`` as the JSON text that is stored (not stored here);
    a target whose spec cannot be resolved gets its typed, located ``SpecError`` instead."""
    datasets: dict[int, Any] = {}
    configs: dict[tuple[int, int], tuple[Any, dict[str, str]]] = {}
    stmt = prepared(
        "dataset_seed",
        lambda: select(dataset.c.jobs_submitted, dataset.c.seed).where(
            dataset.c.id == bindparam("p")
        ),
    )
    out: list[str | SpecError] = []
    for t in targets:
        d = datasets.get(t.dataset_id)
        if d is None:
            d = datasets[t.dataset_id] = conn.execute(stmt, {"p": t.dataset_id}).one()
        known = configs.get((t.dataset_id, t.config_version))
        if known is None:
            known = configs[t.dataset_id, t.config_version] = config_and_uploads(
                conn, t.dataset_id, t.config_version
            )
        config, pinned = known
        info = JobInfo(
            dataset=t.dataset_id, job=t.job_index, jobs_submitted=d.jobs_submitted,
            dataset_seed=d.seed, system=system,
        )  # fmt: skip
        try:
            resolved = encode(pin(resolve_at_site(config, t.task_index, info), pinned))
        except SpecError as exc:
            out.append(exc)
            continue
        _known_checksums(conn, t.dataset_id, resolved["data"])
        resolved.update(
            task_id=t.task_id, attempt=t.attempt, dataset=t.dataset_id,
            config_version=t.config_version,
        )  # fmt: skip
        out.append(json.dumps(resolved, default=str))
    return out


def _known_checksums(conn: Connection, dataset_id: int, data: list[dict[str, Any]]) -> None:
    """Give each input the checksum recorded when an earlier task of the dataset wrote it."""
    inputs = [d for d in data if d["movement"] in ("input", "both")]
    if not inputs:
        return
    rows = conn.execute(
        select(file.c.url, file.c.checksum_type, file.c.checksum, file.c.size)
        .where(
            file.c.dataset_id == dataset_id,
            file.c.url.in_([d["remote"] for d in inputs]),
            file.c.movement.in_(["output", "both"]),
            file.c.checksum.is_not(None),
        )
        .order_by(file.c.id)
    ).all()
    known = {r.url: r for r in rows}  # the newest record of each URL wins
    for d in inputs:
        r = known.get(d["remote"])
        if r is not None:
            d["checksum"] = f"{r.checksum_type}:{r.checksum}"
            d["size"] = r.size
