"""Reproducible random seeds: every job's seed follows from the dataset's seed and its index."""

from __future__ import annotations

import hashlib

#: Job seeds fit a signed 64-bit database column.
SEED_BITS = 63


def job_seed(dataset_seed: int, job_index: int) -> int:
    """The RNG seed of job ``job_index`` in a dataset seeded with ``dataset_seed``.

    A hash rather than ``dataset_seed + job_index``, so that neighbouring datasets do not
    share streams shifted by one job.
    """
    digest = hashlib.sha256(f"frazil-job:{dataset_seed}:{job_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << SEED_BITS) - 1)
