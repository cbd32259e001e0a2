"""``python -m frazil.pilot``: run one attempt (the site daemon starts this in a batch job).

Needs only the standard library and httpx on the worker node.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from frazil.client import claim_reserved
from frazil.errors import Rejected
from frazil.logs import configure
from frazil.pilot.multi import MultiOptions, MultiPilot, visible_gpus
from frazil.pilot.run import Pilot, PilotOptions, read_passkey
from frazil.pilot.standalone import StandaloneClient


def main(argv: list[str] | None = None) -> int:
    """Parse the site's arguments and run the attempt; returns the exit code."""
    p = argparse.ArgumentParser(prog="frazil pilot", description=__doc__)
    p.add_argument("--server", help="the Frazil server's URL")
    p.add_argument("--task", type=int, help="task id")
    p.add_argument("--attempt", type=int, help="attempt number")
    p.add_argument("--passkey-file", type=Path, help="file holding the passkey")
    p.add_argument("--spec", type=Path, help="run this resolved spec without a server")
    p.add_argument(
        "--reservation-file", type=Path, help="claim a reserved task first (batch-side DAGs)"
    )
    p.add_argument("--workdir", type=Path, required=True, help="scratch directory for the task")
    p.add_argument("--heartbeat", type=float, default=60.0, help="seconds between heartbeats")
    p.add_argument("--cache", type=Path, default=None, help="download cache directory")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--md5", action="store_true", help="also compute md5 of outputs")
    p.add_argument("--fail-exit-code", type=int, default=1, help="exit code after a failure")
    multi = p.add_argument_group("multi-task pilot", "run tasks until idle (--pilot)")
    multi.add_argument("--pilot", type=int, help="this pilot's id (the site created it)")
    multi.add_argument("--key-file", type=Path, help="file holding the pilot's key")
    multi.add_argument("--cpu", type=int, default=1, help="cores the batch job holds")
    multi.add_argument("--gpu", type=int, default=0, help="GPUs the batch job holds")
    multi.add_argument("--memory", type=float, default=2.0, help="memory, GB")
    multi.add_argument("--disk", type=float, default=10.0, help="scratch disk, GB")
    multi.add_argument("--walltime", type=float, default=24.0, help="walltime, hours")
    multi.add_argument("--idle", type=float, default=60.0, help="seconds idle before ending")
    multi.add_argument("--wait", type=float, default=20.0, help="long-poll seconds")
    a = p.parse_args(argv)
    configure(logging.INFO)  # one line per record, and not one per HTTP request
    if a.pilot is not None:
        if a.server is None or a.key_file is None:
            p.error("a multi-task pilot needs --server and --key-file")
        return MultiPilot(
            MultiOptions(
                server=a.server, pilot_id=a.pilot, key=read_passkey(a.key_file),
                workdir=a.workdir, cpu=a.cpu, gpu=a.gpu, memory=a.memory, disk=a.disk,
                walltime=a.walltime, idle=a.idle, wait=a.wait, heartbeat=a.heartbeat,
                cache=a.cache, keep=a.keep, md5=a.md5, gpus=visible_gpus(),
            )
        ).run()  # fmt: skip
    if a.spec is not None:
        options = PilotOptions(
            server="", task_id=0, attempt=0, passkey="", workdir=a.workdir,
            heartbeat=a.heartbeat, cache=a.cache, keep=a.keep, md5=a.md5,
            fail_exit_code=a.fail_exit_code,
        )  # fmt: skip
        return Pilot(options, StandaloneClient(a.spec)).run()
    if a.server is not None and a.task is not None and a.reservation_file is not None:
        try:
            claimed = claim_reserved(a.server, a.task, read_passkey(a.reservation_file))
        except Rejected as exc:  # its dependencies did not complete: nothing to run
            logging.getLogger("frazil.pilot").warning("not claimed: %s", exc)
            return 0
        a.attempt, passkey = claimed.attempt, claimed.passkey
    elif a.server is None or a.task is None or a.attempt is None or a.passkey_file is None:
        p.error("give --server, --task, --attempt and --passkey-file (or --reservation-file)")
    else:
        passkey = read_passkey(a.passkey_file)
    options = PilotOptions(
        server=a.server, task_id=a.task, attempt=a.attempt, passkey=passkey,
        workdir=a.workdir, heartbeat=a.heartbeat, cache=a.cache, keep=a.keep, md5=a.md5,
    )  # fmt: skip
    return Pilot(options).run()


if __name__ == "__main__":
    sys.exit(main())
