"""The ``frazil`` program's entry point: nothing is imported before Ctrl-C can be handled.

Ctrl-C at any moment, while Python imports the command line or while a request waits for
its answer, exits 130 with one line.
"""

from __future__ import annotations

import contextlib
import os
import sys

INTERRUPTED = 130


def main(argv: list[str] | None = None) -> None:
    """Run the command line."""
    try:
        from frazil.cli.main import run  # noqa: PLC0415

        code = run(argv)
    except KeyboardInterrupt:
        code = INTERRUPTED
    if code != INTERRUPTED:
        sys.exit(code)
    # Python ends a process whose KeyboardInterrupt it saw escape an import by SIGINT, not
    # by the status it is given: leave at once, once what was printed is out
    sys.stderr.write("interrupted\n")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(INTERRUPTED)
