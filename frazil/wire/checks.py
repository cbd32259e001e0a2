"""The bounds every shape checks on itself, and the messages that name the shape and field."""

from __future__ import annotations

import math
import typing
from typing import Any

#: Resources a slot or a task may name, at most (cores and GPUs; GB and hours).
MAX_COUNT = 1_000_000
MAX_AMOUNT = 1e9
#: The request body settings (pydantic's) that every shape here is read with.
STRICT: dict[str, Any] = {"extra": "forbid", "allow_inf_nan": False}

#: Resources an attempt can run out of (``Failure.exhausted``).
RESOURCES = ("memory", "disk", "time")
#: How a report ends an attempt, or that it only carries logs.
REPORT_KINDS = ("finish", "fail", "log")
#: What the server answers for each report of an exchange, and each batched heartbeat.
REPORT_RESULTS = ("ok", "stale", "denied", "refused")


def bad(shape: str, name: str, value: object, rule: str) -> ValueError:
    return ValueError(f"{shape}.{name} must be {rule}, not {value!r}")


def count(shape: str, name: str, value: int) -> None:
    if not 0 <= value <= MAX_COUNT:
        raise bad(shape, name, value, f"between 0 and {MAX_COUNT:,}")


def amount(shape: str, name: str, value: float) -> None:
    if not (0 < value <= MAX_AMOUNT) or math.isnan(value):
        raise bad(shape, name, value, f"above 0 and at most {MAX_AMOUNT:g}")


def length(shape: str, name: str, value: str | None, most: int, least: int = 0) -> None:
    if value is not None and not least <= len(value) <= most:
        raise bad(shape, name, f"{value[:40]}..." if len(value) > 40 else value,
                   f"{least} to {most} characters long")  # fmt: skip


def at_most(shape: str, name: str, items: typing.Sized, most: int) -> None:
    if len(items) > most:
        raise ValueError(f"{shape}.{name} holds at most {most:,} items, not {len(items):,}")


def check_exhausted(shape: str, exhausted: typing.Iterable[str]) -> None:
    unknown = sorted(set(exhausted) - set(RESOURCES))
    if unknown:
        raise ValueError(
            f"{shape}.exhausted: unknown resources {unknown}; known: {', '.join(RESOURCES)}"
        )
