"""``python -m tests.faults.serve --port N``: the server of the fault tests, in its own process.

What ``frazil server`` runs (the API under uvicorn, the daemons under their supervisor, the
database from ``FRAZIL_DB_URL``), with two differences for the tests: the daemons' short
intervals (as ``frazil demo``), so that the watchdog finds lost attempts in seconds, and no
counter repair daemon, so that the counters the tests check are the ones the transactions
kept, not ones a recount fixed after every restart.
"""

from __future__ import annotations

import argparse
import logging
import threading

import uvicorn

from frazil.cli.server_commands import open_db
from frazil.server.app import create_app
from frazil.server.daemons import server_daemons
from frazil.server.supervisor import Supervisor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    db = open_db()
    daemons = [d for d in server_daemons(db, fast=True) if d.name != "repair"]
    stop = threading.Event()
    threading.Thread(target=Supervisor(daemons).run, args=(stop,), daemon=True).start()
    try:
        uvicorn.run(
            create_app(db), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    finally:
        stop.set()


if __name__ == "__main__":
    main()
