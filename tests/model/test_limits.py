"""The ranges of user-set numbers: each fits the column that stores it, and refuses the rest."""

import math

import pytest
from sqlalchemy import BigInteger, Double, Integer

from frazil.model import limits
from frazil.store.schema import dataset, task

STORED_IN = [
    (limits.PRIORITY, [dataset.c.priority]),
    (limits.SEED, [dataset.c.seed]),
    (limits.MAX_FAILURES, [dataset.c.max_failures]),
    (limits.DURATION, [dataset.c.queued_timeout, dataset.c.processing_timeout,
                       dataset.c.heartbeat_timeout]),
    (limits.COUNT, [task.c.cpu, task.c.gpu]),
    (limits.AMOUNT, [task.c.memory, task.c.disk, task.c.time]),
]  # fmt: skip


@pytest.mark.parametrize(("bounds", "columns"), STORED_IN)
def test_each_range_fits_the_columns_that_store_it(bounds, columns):
    for column in columns:
        kind = type(column.type)
        if kind is BigInteger:
            assert bounds.integer and bounds.high <= limits.INT64_MAX
        elif kind is Integer:
            assert bounds.integer and bounds.high <= limits.INT32_MAX
        else:
            assert kind is Double and math.isfinite(bounds.high)
        assert bounds.low >= 0


def test_every_range_refuses_what_arithmetic_or_a_column_cannot_hold():
    for bounds, _ in STORED_IN:
        for bad in (bounds.high * 2, -1, math.nan, math.inf, 2**1100, True, "1", None):
            assert bounds.problem(bad) is not None, (bounds, bad)
        assert bounds.problem(bounds.high) is None and bounds.problem(bounds.low) is None
    assert limits.COUNT.problem(2**1100) == (
        "must be a whole number from 0 to 1000000, got a 1101-bit number"
    )
    assert limits.COUNT.problem(2.5) == "must be a whole number from 0 to 1000000, got 2.5"
    assert limits.COUNT.problem(2.0) is None
