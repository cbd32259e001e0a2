"""The server's health (``GET /health``, for load balancers and monitors): whether the
database answers, and how the daemons are.

The server is unhealthy when the database cannot be reached, or when a daemon keeps crashing
(``failing``: as many crashes in a row as the administrator is told of) or its supervisor
stopped. A daemon that crashed once or twice is ``restarting``: reported, still healthy.
Nothing is logged here: what makes the server unhealthy is logged where it happens, and a
load balancer asks every few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text

from frazil import __version__
from frazil.errors import StatementFailed, StoreError
from frazil.store.db import Database
from frazil.wire import DaemonHealth, Health


def database_problem(db: Database) -> str | None:
    """Why the database cannot be used now (None: it answers)."""
    try:
        with db.read() as conn:
            conn.execute(text("SELECT 1"))
    except (StoreError, StatementFailed) as exc:
        return str(exc)
    return None


def health(db: Database, daemons: Sequence[DaemonHealth]) -> Health:
    """The server's health now."""
    problems = []
    why = database_problem(db)
    if why is not None:
        problems.append(f"the database is unreachable: {why}")
    for d in daemons:
        if d.state == "failing":
            problems.append(f"daemon {d.name} crashed {d.crashes} times in a row: {d.error}")
        elif d.state == "stopped":
            problems.append(f"daemon {d.name} is stopped")
    return Health(
        "unhealthy" if problems else "ok",
        __version__,
        database="reachable" if why is None else "unreachable",
        daemons=tuple(daemons),
        problems=tuple(problems),
    )
