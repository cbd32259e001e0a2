"""Worker processes for the concurrency and crash tests: ``python -m tests.services.workers``.

claim URL SITE BATCH OUT        claim until nothing is left; write claimed ids to OUT
run URL SITE BATCH OUT          claim, start and finish until the datasets are complete
materialize URL CHUNK           materialize in small chunks until nothing is left
"""

from __future__ import annotations

import os
import sys
import time

from frazil.model.records import SiteResources
from frazil.services import attempts
from frazil.services.claim import claim
from frazil.services.materialize import materialize_step
from frazil.store import Database


def main(argv: list[str]) -> None:
    mode, url = argv[0], argv[1]
    db = Database(url)
    start_at = float(os.environ.get("START_AT", "0"))  # start together, for real contention
    with db.read():
        pass  # connect before waiting
    time.sleep(max(0.0, start_at - time.time()))
    if mode == "materialize":
        chunk = int(argv[2])
        while materialize_step(db, time.time(), max_jobs=chunk, chunk=chunk):
            pass
        return
    site, batch, out = (
        SiteResources(name=argv[2], cpu=64, memory=1000, disk=1000, time=100),
        int(argv[3]),
        argv[4],
    )
    idle_rounds = 0
    with open(out, "a") as f:
        while idle_rounds < 20:
            claims = claim(db, site, batch, time.time())
            if not claims:
                idle_rounds += 1
                time.sleep(0.02)
                continue
            idle_rounds = 0
            for c in claims:
                f.write(f"{c.task_id} {c.attempt}\n")
                f.flush()
                if mode == "run":
                    attempts.start(db, c.task_id, c.attempt, c.passkey, now=time.time())
                    attempts.finish(db, c.task_id, c.attempt, c.passkey, now=time.time())


if __name__ == "__main__":
    main(sys.argv[1:])
