"""Who may do what to a dataset, and why: the one place for the rule.

A dataset has an owner (the user who submitted it), a group (may be none) and may be
private. Reading it (its status, jobs, tasks, logs, config, statistics, events) is allowed
to anyone whose role reads, unless it is private: then only to its owner, its group's
members and administrators. Controlling it (suspend, resume, reset, hard reset, priority,
jobs, truncate, a new config version, delete) is allowed to its owner, to members of its
group who may write, and to administrators, each with a token whose scope writes. A site's
token reads no dataset (it sees what it runs through the site protocol).

Every answer says why, allowed or not: ``frazil whoami`` and ``GET /me/permissions`` show
the reasons, and a refusal (403) names the missing right.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, Connection, false, or_, select, true

from frazil.errors import Forbidden, NotFound
from frazil.services.datasets import find_dataset
from frazil.services.tokens import Caller, Role, Scope, reaches
from frazil.store.db import Database
from frazil.store.schema import dataset, task


class Right(StrEnum):
    """What a caller may do to one dataset."""

    READ = "read"
    CONTROL = "control"


@dataclass(frozen=True)
class Owned:
    """What the rule needs to know of a dataset."""

    id: int
    owner: str
    group: str
    private: bool

    def label(self) -> str:
        return f"dataset {self.id}"


@dataclass(frozen=True)
class Verdict:
    """One right's answer, with its reason."""

    right: Right
    allowed: bool
    why: str


def _scope_word(who: Caller) -> str:
    return f"{who.name!r}'s token has {who.scope.value} scope"


def decide(who: Caller, d: Owned, right: Right) -> Verdict:
    """Whether ``who`` has ``right`` on ``d``, and why."""
    what = d.label()
    if who.role is Role.SITE:
        return Verdict(right, False, f"{who.name!r} is a site: sites do not {right.value} datasets")
    if right is Right.CONTROL and who.role is Role.READONLY:
        return Verdict(right, False, f"{who.name!r} is a readonly user: they change nothing")
    if right is Right.CONTROL and not reaches(who.scope, Scope.WRITE):
        return Verdict(right, False, f"{_scope_word(who)}: it changes nothing")
    if who.admin:
        return Verdict(right, True, f"{who.name!r} is an administrator")
    if d.owner == who.name:
        return Verdict(right, True, f"{who.name!r} owns {what}")
    in_group = d.group != "" and d.group in who.groups
    if right is Right.READ:
        if not d.private:
            return Verdict(right, True, f"{what} is not private")
        if in_group:
            return Verdict(right, True, f"{who.name!r} is in {what}'s group {d.group!r}")
        return Verdict(
            right, False,
            f"{what} is private to {d.owner!r}{_and_group(d)}, and {who.name!r} is neither",
        )  # fmt: skip
    if in_group and who.groups[d.group]:
        return Verdict(right, True, f"{who.name!r} may write in {what}'s group {d.group!r}")
    if in_group:
        return Verdict(
            right, False, f"{who.name!r} is in {what}'s group {d.group!r} without write permission"
        )
    return Verdict(
        right, False,
        f"{what} belongs to {d.owner!r}{_and_group(d)}: {who.name!r} is not its owner, not "
        "a member of its group with write permission, not an administrator",
    )  # fmt: skip


def _and_group(d: Owned) -> str:
    return f" and group {d.group!r}" if d.group else ""


def check(who: Caller, d: Owned, right: Right) -> None:
    """Raise ``Forbidden`` (its message naming the missing right and why) unless ``who`` has
    ``right`` on ``d``."""
    verdict = decide(who, d, right)
    if not verdict.allowed:
        raise Forbidden(f"no {right.value} right on {d.label()}: {verdict.why}")


def check_account(who: Caller, name: str) -> None:
    """Raise ``Forbidden`` unless ``who`` may change account ``name`` (its password): an
    administrator, or that user with a token that writes."""
    mine = who.person and who.name == name and reaches(who.scope, Scope.WRITE)
    if not (who.admin or mine):
        raise Forbidden(f"only an administrator or {name!r} may set {name!r}'s password")


def explain(who: Caller, d: Owned) -> list[Verdict]:
    """Every right of ``who`` on ``d``, with its reason."""
    return [decide(who, d, right) for right in Right]


def owned(conn: Connection, dataset_id: int) -> Owned:
    """The owner, group and privacy of a dataset (by id)."""
    row = conn.execute(
        select(dataset.c.id, dataset.c.owner, dataset.c.group_name, dataset.c.private).where(
            dataset.c.id == dataset_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no dataset {dataset_id}")
    return Owned(row.id, row.owner, row.group_name or "", bool(row.private))


def ownership(db: Database, ref: int | str) -> Owned:
    """The owner, group and privacy of dataset ``ref`` (id or alias)."""
    with db.read() as conn:
        return owned(conn, find_dataset(conn, ref))


def guard(db: Database, who: Caller, ref: int | str, right: Right) -> int:
    """The id of dataset ``ref`` (id or alias) once ``who`` is found to have ``right`` on it
    (``NotFound`` for no such dataset, ``Forbidden`` naming the missing right)."""
    d = ownership(db, ref)
    check(who, d, right)
    return d.id


def guard_task(db: Database, who: Caller, task_id: int, right: Right) -> int:
    """The dataset of task ``task_id`` once ``who`` is found to have ``right`` on it."""
    with db.read() as conn:
        row = conn.execute(select(task.c.dataset_id).where(task.c.id == task_id)).first()
        if row is None:
            raise NotFound(f"no task {task_id}")
        d = owned(conn, row.dataset_id)
    check(who, d, right)
    return d.id


def visible(who: Caller) -> ColumnElement[bool]:
    """A condition on ``dataset`` rows: those ``who`` may read (``decide`` as a query)."""
    if who.role is Role.SITE:
        return false()
    if who.admin:
        return true()
    return or_(
        dataset.c.private.is_(False),
        dataset.c.owner == who.name,
        dataset.c.group_name.in_([g for g in who.groups if g]),
    )
