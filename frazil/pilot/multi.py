"""The multi-task pilot (the glidein model): one batch job that runs task after task.

The pilot holds what its batch job was given (cores, GPUs, memory, disk, walltime) and keeps
asking the server for tasks that fit what is left, running each in its own thread with its
own scratch directory, log, heartbeat phase and passkey (as a single-task pilot would). A
request for work is a long poll: when nothing is ready the server holds it and answers the
moment a task becomes ready. Reports go out as soon as a task ends, batched with whatever
else is ready to go, so a dependent task starts within milliseconds of its parent.

The pilot ends when it has been idle for ``idle`` seconds, when too little walltime is left
for any task, or on SIGTERM (its running tasks are stopped and handed back without counting
a failure, or as timeouts near the walltime). Only the standard library and httpx are used.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from frazil.client import PilotSession, request_id, send_heartbeats
from frazil.errors import BadPasskey, FrazilError, StaleAttempt, StoreError, Unreachable
from frazil.pilot.run import Pilot, PilotOptions
from frazil.wire import (
    Beat,
    ExchangeAnswer,
    Failure,
    Finish,
    Handed,
    LogAck,
    LogChunk,
    Report,
    TaskSpec,
    encode,
)

log = logging.getLogger(__name__)

#: Reports sent in one request at most, and their size (JSON) beyond the first: the server
#: reads at most ``[server] max_key_body_bytes`` (4 MiB by default) before it checks a key.
REPORT_BATCH = 500
REPORT_BYTES = 1024 * 1024
#: How long a pilot waits for more of its running tasks to end before it reports (seconds).
GATHER = 0.002
#: A task's last log bytes ride on its final report up to this size (base64); a longer rest
#: goes just before it, a report per slice (the exchange splits at ``REPORT_BYTES``).
INLINE_LOGS = 256 * 1024
#: How often the running tasks' new log bytes ride on the pilot's exchanges (seconds): each
#: chunk costs the server a file write and a row, so not with every exchange of short tasks.
LOGS_EVERY = 5.0
#: Walltime kept back when asking for tasks (seconds): a task must end before the pilot does.
MARGIN = 30.0


@dataclass(frozen=True)
class MultiOptions:
    """How the site started this pilot: who it is and what its batch job holds."""

    server: str
    pilot_id: int
    key: str
    workdir: Path
    cpu: int = 1
    gpu: int = 0
    memory: float = 2.0
    disk: float = 10.0
    walltime: float = 24.0  # hours
    idle: float = 60.0  # seconds without work before the pilot ends
    wait: float = 20.0  # seconds a request for work may wait at the server
    heartbeat: float = 60.0
    cache: Path | None = None
    keep: bool = False
    md5: bool = False
    gpus: tuple[str, ...] = ()  # device ids to hand out (default: 0 .. gpu-1)


@dataclass
class _Task:
    claim: Handed
    cpu: int
    gpu: int
    memory: float
    disk: float
    devices: list[str]
    phase: str | None = None
    stale: bool = False
    reported: bool = False
    pilot: Pilot | None = None


class _Reporter:
    """A task's reporter inside the multi-task pilot: reports go to the pilot's outbox."""

    def __init__(self, owner: MultiPilot, t: _Task) -> None:
        self.owner = owner
        self.t = t
        self.chunks: list[LogChunk] = []  # the rest of the logs, sent with the last report

    def spec(self) -> TaskSpec:
        return self.t.claim.spec

    def start(self, host: str) -> None:
        """Already started: the server handed the task out as processing."""

    def heartbeat(
        self, phase: str | None = None, logs: Sequence[LogChunk] = ()
    ) -> Sequence[LogAck]:
        """The pilot's exchanges carry the heartbeat and the logs' chunks (``MultiPilot``)."""
        if self.t.stale:
            raise StaleAttempt(f"task {self.t.claim.task_id} is no longer this pilot's")
        if phase is not None:
            self.t.phase = phase
        return ()

    def finish(self, done: Finish) -> None:
        self._last(Report.finished(self.t.claim.key, done, {}))

    def fail(self, failure: Failure) -> str:
        self._last(Report.failed(self.t.claim.key, failure, {}))
        return "reported"

    def _last(self, report: Report) -> None:
        """The task's last report, with the rest of its logs (applied before it)."""
        self.t.reported = True
        if sum(len(c.data) for c in self.chunks) <= INLINE_LOGS:
            self.owner.post(replace(report, chunks=(*self.chunks, *report.chunks)))
            return
        c = self.t.claim
        logs = [Report("log", c.task_id, c.attempt, c.passkey, chunks=(k,)) for k in self.chunks]
        self.owner.post(*logs, report)

    def append_log(self, chunk: LogChunk) -> LogAck:
        """The rest of a log at the end: it goes out in the same exchange as the task's last
        report (one round trip per task, not one more for its logs)."""
        c = self.t.claim
        self.chunks.append(chunk)
        return LogAck(c.task_id, c.attempt, chunk.name, chunk.end, 0)


class MultiPilot:
    """Runs tasks until idle, out of walltime, or stopped; returns an exit code from ``run``."""

    def __init__(self, options: MultiOptions, session: PilotSession | None = None) -> None:
        self.o = options
        self.session = session or PilotSession(
            options.server, options.pilot_id, options.key, retry_for=600, timeout=options.wait + 60
        )
        self.host = socket.gethostname()
        self.running: dict[int, _Task] = {}
        self.free_devices = list(options.gpus or [str(i) for i in range(options.gpu)])
        self.outbox: list[Report] = []
        self.terminated = False
        self.ended = False  # the server ended this pilot
        self.closing = False  # the pilot takes no more work
        self._polling = False  # a request for work is out (reports go separately meanwhile)
        self.done = 0
        self._logs_sent = 0.0  # when the running tasks' logs last went out (monotonic)
        self._lock = threading.Condition()
        self._stop = threading.Event()

    # -- accounting ---------------------------------------------------------------------------

    def _left(self) -> dict[str, float]:
        used = {"cpu": 0.0, "gpu": 0.0, "memory": 0.0, "disk": 0.0}
        for t in self.running.values():
            used["cpu"] += t.cpu
            used["gpu"] += t.gpu
            used["memory"] += t.memory
            used["disk"] += t.disk
        return {
            "cpu": self.o.cpu - used["cpu"],
            "gpu": self.o.gpu - used["gpu"],
            "memory": self.o.memory - used["memory"],
            "disk": self.o.disk - used["disk"],
        }

    def _room(self) -> int:
        """How many tasks to ask for (0: full)."""
        left = self._left()
        if left["memory"] <= 0 or left["disk"] <= 0:
            return 0
        if left["cpu"] >= 1:
            return int(left["cpu"])
        return 1 if left["gpu"] >= 1 else 0

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        """Run tasks until there is no more work for this pilot; returns the exit code."""
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, self._on_term) if main else None
        log.info(
            "pilot %d on %s: %d cpu, %d gpu, %.1f GB memory, %.1f GB disk, %.2f h",
            self.o.pilot_id, self.host, self.o.cpu, self.o.gpu, self.o.memory, self.o.disk,
            self.o.walltime,
        )  # fmt: skip
        sender = threading.Thread(target=self._send_loop, name="reports", daemon=True)
        beater = threading.Thread(target=self._beat_loop, name="heartbeats", daemon=True)
        sender.start()
        beater.start()
        reason = "stopped"
        try:
            reason = self._loop()
        except (BadPasskey, StaleAttempt) as exc:
            reason = f"the server ended this pilot: {exc}"
            self.ended = True
            self.terminate()
        except FrazilError as exc:  # the server stayed away, or refused the pilot's requests
            reason = f"stopped: {exc}"
            log.error("pilot %d stops: %s", self.o.pilot_id, exc)
            self.terminate()
        finally:
            self.closing = True
            self._drain()
            self._stop.set()
            with self._lock:
                self._lock.notify_all()
            sender.join(timeout=30)
            self._flush()
            if not self.ended:
                try:
                    self.session.end(reason)
                except FrazilError as exc:
                    log.warning("cannot tell the server that the pilot ended: %s", exc)
            if main:
                signal.signal(signal.SIGTERM, previous)
            self.session.close()
        log.info("pilot %d ends after %d task(s): %s", self.o.pilot_id, self.done, reason)
        return 143 if self.terminated else 0

    def _loop(self) -> str:
        started = time.monotonic()
        last_work = started
        while not self.terminated:
            now = time.monotonic()
            time_left = self.o.walltime * 3600 - (now - started) - MARGIN
            if time_left <= 0:
                return "walltime reached"
            with self._lock:
                room = self._room()
                busy = bool(self.running)
                if busy:
                    last_work = now
                elif now - last_work >= self.o.idle:
                    return f"idle for {self.o.idle:g} s"
                logs = self._log_reports(self.o.heartbeat) if room == 0 else []
                if room == 0 and not logs:
                    self._lock.wait(timeout=1.0)
                    continue
                gather = bool(self.outbox) and busy
            if logs:  # full: only the running tasks' logs go out, every heartbeat
                self._take(self.session.exchange(logs, host=self.host), logs)
                continue
            if gather:  # other tasks are about to end too: one exchange for all of them
                time.sleep(GATHER)
            with self._lock:
                room = self._room()
                reports = self._take_outbox() + self._log_reports(LOGS_EVERY)
                self._polling = True
                self._lock.notify_all()
            idle_left = max(0.0, self.o.idle - (now - last_work))
            wait = self.o.wait if busy else min(self.o.wait, idle_left)
            try:
                answer = self.session.exchange(
                    reports, limit=room, wait=wait, time_left=time_left / 3600, host=self.host
                )
            finally:
                with self._lock:
                    self._polling = False
            self._take(answer, reports)
            if answer.tasks:
                last_work = time.monotonic()
        return "terminated (SIGTERM)"

    def _log_reports(self, every: float) -> list[Report]:
        """The running tasks' new log bytes, one report each, if ``every`` seconds have
        passed since the last that were sent. Called with the lock held."""
        now = time.monotonic()
        if now - self._logs_sent < every:
            return []
        self._logs_sent = now
        reports = []
        for t in self.running.values():
            if t.pilot is None or t.stale or t.reported:
                continue
            chunks = t.pilot.shipper.pending()
            if chunks:
                c = t.claim
                reports.append(Report("log", c.task_id, c.attempt, c.passkey,
                                      chunks=tuple(chunks)))  # fmt: skip
        return reports

    def _take(self, answer: ExchangeAnswer, reports: Sequence[Report]) -> None:
        """Apply an exchange's answer: log its refusals, note its logs' acknowledgements,
        start the tasks it handed out."""
        self._check(reports, answer.results)
        with self._lock:
            for ack in answer.logs:
                t = self.running.get(ack.task_id)
                if t is not None and t.pilot is not None and t.claim.attempt == ack.attempt:
                    t.pilot.shipper.take([ack])
        for claim in answer.tasks:
            self._launch(claim)

    def _launch(self, claim: Handed) -> None:
        req = claim.spec.requirements
        with self._lock:
            if claim.task_id in self.running:  # handed out again by a repeated exchange
                return
            free = self.free_devices
            devices = [free.pop(0) for _ in range(min(req.gpu, len(free)))]
            t = _Task(claim, req.cpu, req.gpu, req.memory, req.disk, devices)
            self.running[claim.task_id] = t
        threading.Thread(
            target=self._run_task, args=(t,), name=f"task-{claim.task_id}", daemon=True
        ).start()

    def _run_task(self, t: _Task) -> None:
        c = t.claim
        root = self.o.workdir / f"{c.task_id}-{c.attempt}"
        env = {"FRAZIL_PILOT": str(self.o.pilot_id)}
        if self.o.gpu or self.o.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(t.devices)
        options = PilotOptions(
            server=self.o.server, task_id=c.task_id, attempt=c.attempt,
            passkey=c.passkey, workdir=root / "task", heartbeat=self.o.heartbeat,
            cache=self.o.cache, keep=self.o.keep, md5=self.o.md5, env=env, beats=False,
            cleans=False,
        )  # fmt: skip
        try:
            t.pilot = Pilot(options, _Reporter(self, t))
            if self.terminated:
                t.pilot.terminate()
            t.pilot.run()
        except Exception:  # a bug in the pilot must not take the other tasks down
            log.exception("task %d: the pilot failed", c.task_id)
            self.post(Report.failed(c.key, Failure("the pilot failed; see its log"), {}))
        finally:
            if not self.o.keep:
                shutil.rmtree(root, ignore_errors=True)
            with self._lock:
                self.running.pop(c.task_id, None)
                self.free_devices.extend(t.devices)
                self.done += 1
                self._lock.notify_all()

    # -- reports ------------------------------------------------------------------------------

    def post(self, *reports: Report) -> None:
        """Queue reports; they go out at once, together (with whatever else is waiting)."""
        with self._lock:
            self.outbox.extend(reports)
            self._lock.notify_all()

    def _take_outbox(self) -> list[Report]:
        size, count = 0, 0
        for report in self.outbox[:REPORT_BATCH]:
            size += len(json.dumps(encode(report)))
            if count and size > REPORT_BYTES:
                break
            count += 1
        reports, self.outbox = self.outbox[:count], self.outbox[count:]
        return reports

    def _send_loop(self) -> None:
        while True:
            with self._lock:
                # while no request for work is out, the next one carries the reports
                while not (self.outbox and self._polling) and not self._stop.is_set():
                    self._lock.wait()
                if self._stop.is_set():
                    return
            self._flush()

    def _flush(self) -> None:
        """Send what is in the outbox (while a request for work waits at the server)."""
        request = request_id()  # kept until answered: a repeat gets what the first handed out
        while True:
            with self._lock:
                reports = self._take_outbox()
            if not reports:
                return
            with self._lock:
                room = 0 if self.terminated or self.closing else self._room()
            try:
                # with room, ask for work too: a finished parent's child comes back at once
                answer = self.session.exchange(reports, limit=room, host=self.host, request=request)
            except (BadPasskey, StaleAttempt) as exc:
                log.error("reports refused, the pilot has ended: %s", exc)
                self.ended = True
                return
            except (Unreachable, StoreError) as exc:  # the server (or its database) stayed
                # away for the client's whole retry time
                log.error("cannot send %d report(s), keeping them: %s", len(reports), exc)
                with self._lock:
                    self.outbox[:0] = reports
                time.sleep(1.0)
                continue
            except FrazilError as exc:  # refused as such: sending it again cannot help
                log.error("the server refused %d report(s), dropping them: %s", len(reports), exc)
                continue
            request = request_id()
            self._take(answer, reports)

    def _check(self, reports: Sequence[Report], results: Sequence[str]) -> None:
        for r, result in zip(reports, results, strict=True):
            if result != "ok":
                log.warning("task %d attempt %d: report %s was %s", r.task_id, r.attempt,
                            r.kind, result)  # fmt: skip

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.o.heartbeat):
            with self._lock:
                tasks = [t for t in self.running.values() if not t.stale]
            if not tasks:
                continue
            beats = [
                Beat(t.claim.task_id, t.claim.attempt, t.claim.passkey, t.phase) for t in tasks
            ]
            try:
                results = send_heartbeats(self.o.server, beats, retry_for=30)
            except FrazilError as exc:
                log.warning("heartbeats failed: %s", exc)
                continue
            for t, result in zip(tasks, results, strict=True):
                if result != "ok" and not t.reported:
                    log.warning("task %d: heartbeat %s; stopping it", t.claim.task_id, result)
                    t.stale = True
                    if t.pilot is not None:
                        t.pilot.stale = True
                        t.pilot.runner.stop()

    # -- ending -------------------------------------------------------------------------------

    def _on_term(self, _signum: int, _frame: object) -> None:
        self.terminate()

    def terminate(self) -> None:
        """Stop claiming and stop every running task (reported as stopped from outside)."""
        self.terminated = True
        with self._lock:
            tasks = list(self.running.values())
        for t in tasks:
            if t.pilot is not None:
                t.pilot.terminate()

    def _drain(self) -> None:
        """Wait for the running tasks to end and report."""
        with self._lock:
            while self.running:
                self._lock.wait(timeout=1.0)


def visible_gpus() -> tuple[str, ...]:
    """The GPU ids the batch system gave this job (``CUDA_VISIBLE_DEVICES``), if any."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return tuple(v for v in value.split(",") if v.strip())
