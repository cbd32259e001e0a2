"""The one thing every benchmark task does: append ``"job step"`` to the run's log.

Kept apart from ``workloads`` (the harness: parsing, checking) so that a task imports only
this. Frazil imports a class module's code afresh for every task (a long-lived pilot never
runs code imported for an earlier task), so whatever the task module imports is part of each
task's cost, as it is for a user's module; the other systems import it once per worker.

Standard library only.
"""

from __future__ import annotations

import os


def record(log: str, job: int, step: int) -> None:
    """Append ``"job step"`` to ``log``: one short O_APPEND write is atomic, so concurrent
    workers' lines never interleave."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{job} {step}\n".encode())
    finally:
        os.close(fd)
