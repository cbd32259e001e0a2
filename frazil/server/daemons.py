"""The server's daemons, each a ``step(now)``.

- materializer: makes the jobs that datasets still lack, a chunk at a time;
- watchdog: resets tasks past their queued, processing or heartbeat timeouts;
- repair: recounts job and dataset counters of datasets at work from their tasks (a safety
  net: the counters are kept in the same transactions as the changes);
- collector (IceProd's soapdh): deletes the job-temporary files of complete jobs and the
  dataset-temporary files of complete datasets under the storage roots, where the task's
  resolved spec declared them (``services.files``); it runs only when roots are set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from frazil.server.supervisor import Daemon
from frazil.services.files import collect_temporary
from frazil.services.materialize import materialize_step
from frazil.services.recount import repair_step
from frazil.services.watchdog import timeouts_step
from frazil.store.db import Database

log = logging.getLogger(__name__)


def collect_step(db: Database, now: float, roots: Sequence[Path]) -> int:
    """Delete temporary files that may go; returns how many were deleted."""
    return collect_temporary(db, now, roots).deleted


def server_daemons(
    db: Database, *, fast: bool = False, storage_roots: Sequence[Path] = ()
) -> list[Daemon]:
    """The daemons of ``frazil server`` (``fast``: short intervals, for demos and tests);
    the collector only with ``storage_roots`` to delete under."""
    scale = 0.1 if fast else 1.0
    daemons = [
        Daemon("materializer", lambda now: materialize_step(db, now), 5.0 * scale),
        Daemon("watchdog", lambda now: timeouts_step(db, now), 30.0 * scale),
        Daemon("repair", lambda now: repair_step(db, now), 600.0 * scale),
    ]
    if storage_roots:
        roots = tuple(storage_roots)
        daemons.append(Daemon("collector", lambda now: collect_step(db, now, roots), 60.0 * scale))
    else:
        log.info("no [server] storage_roots: the collector is off, temporary files are kept")
    return daemons
