"""The pilot without a server (unmonitored mode): the spec comes from a file, reports go to files.

``frazil run`` writes each task's resolved spec next to its batch script; the batch job runs
``python -m frazil.pilot --spec spec.json --workdir DIR``. The pilot then behaves as usual,
but "reports" by writing ``result.json`` (status, error, usage, statistics, files) and the
log tails beside the spec, and exits non-zero on failure so that the batch system holds the
tasks that depend on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frazil.errors import SpecError
from frazil.wire import Failure, Finish, LogAck, LogChunk, TaskSpec, decode, encode


class StandaloneClient:
    """Stands in for ``PilotClient`` when there is no server."""

    def __init__(self, spec_path: Path) -> None:
        self.spec_path = spec_path
        self.folder = spec_path.parent

    def close(self) -> None:
        """Nothing to close."""

    def spec(self) -> TaskSpec:
        """The task, as ``frazil run`` resolved it."""
        try:
            return decode(TaskSpec, json.loads(self.spec_path.read_text()))
        except (OSError, ValueError) as exc:
            raise SpecError(
                f"{self.spec_path}: not a task spec that this pilot can run: {exc}"
            ) from exc

    def start(self, host: str) -> None:
        """Note where the task runs."""
        self._write({"status": "processing", "host": host, "started": time.time()})

    def heartbeat(
        self, phase: str | None = None, logs: Sequence[LogChunk] = ()
    ) -> Sequence[LogAck]:
        """Nobody listens; keep the phase for a person to read, and the logs beside the spec."""
        if phase:
            (self.folder / "phase").write_text(phase + "\n")
        return [self.append_log(chunk) for chunk in logs]

    def finish(self, done: Finish) -> None:
        """Record success."""
        self._write({"status": "complete", **encode(done)})

    def fail(self, failure: Failure) -> str:
        """Record the failure."""
        self._write({"status": "failed" if failure.counts else "stopped", **encode(failure)})
        return "failed"

    def append_log(self, chunk: LogChunk) -> LogAck:
        """Keep a log beside the spec (``<name>.log``), as the server would."""
        path = self.folder / f"{chunk.name}.log"
        with open(path, "ab") as f:
            size = f.tell()
            if chunk.offset <= size:
                f.write(chunk.payload()[size - chunk.offset :])
            return LogAck(0, 0, chunk.name, f.tell(), 0)

    def _write(self, values: dict[str, Any]) -> None:
        path = self.folder / "result.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(values, time=time.time())
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=2, default=str))
        tmp.replace(path)
