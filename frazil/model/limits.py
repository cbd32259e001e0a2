"""The ranges of the numbers that users may set: one place for each bound.

Every number a user sets (a priority, a seed, a retry limit, a timeout, what a task requires)
ends up in a database column and in arithmetic. The ranges below keep both safe: each lies
inside the range of the column that stores it (``INT32_MAX`` for ``Integer``, ``INT64_MAX``
for ``BigInteger``; ``tests/model/test_limits.py`` checks them against ``store/schema.py``), and
each is narrow enough that sums over many datasets or tasks stay far from overflow. A number
outside its range is refused with a message that names the field, never stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The largest value of a 32-bit ``Integer`` column (PostgreSQL and MariaDB refuse more).
INT32_MAX = 2**31 - 1
#: The largest value of a 64-bit ``BigInteger`` column.
INT64_MAX = 2**63 - 1


def shown(value: object) -> str:
    """``value`` for an error message: a huge integer by its size, not its 300 digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**15:
        return f"a {value.bit_length()}-bit number"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(bound: float) -> str:
    if isinstance(bound, int) or (bound.is_integer() and abs(bound) < 10**16):
        return str(int(bound))
    return f"{bound:g}"


@dataclass(frozen=True)
class Range:
    """The numbers a field accepts: ``low <= x <= high``, finite, whole if ``integer``."""

    low: float
    high: float
    integer: bool = False

    def describe(self) -> str:
        """``a whole number from 1 to 1000`` and the like."""
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} from {_plain(self.low)} to {_plain(self.high)}"

    def problem(self, value: object) -> str | None:
        """Why ``value`` does not fit (``must be ..., got ...``), or None if it does.

        Integers are compared as integers, so ``2**1100`` is refused, not an ``OverflowError``;
        booleans are not numbers here.
        """
        fits = False
        if isinstance(value, int) and not isinstance(value, bool):
            fits = self.low <= value <= self.high
        elif isinstance(value, float):
            fits = (
                math.isfinite(value)
                and self.low <= value <= self.high
                and (not self.integer or value.is_integer())
            )
        return None if fits else f"must be {self.describe()}, got {shown(value)}"


#: A dataset's weight in the fair share (0: leftovers only).
PRIORITY = Range(0, 1_000_000)
#: A dataset's RNG seed (a ``BigInteger`` column).
SEED = Range(0, INT64_MAX, integer=True)
#: ``options.max_failures``: failures before a task is failed for good.
MAX_FAILURES = Range(1, 1000, integer=True)
#: ``options.timeouts.*``, in seconds: at most a year.
DURATION = Range(1e-3, 366 * 86400.0)
#: A task's ``cpu`` and ``gpu`` (``Integer`` columns).
COUNT = Range(0, 1_000_000, integer=True)
#: A task's ``memory`` and ``disk`` (GB) and ``time`` (hours) (``Double`` columns).
AMOUNT = Range(0, 1e9)
#: How many times a tray runs.
ITERATIONS = Range(1, 100_000, integer=True)
