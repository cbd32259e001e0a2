"""The pilot (the JEP of "The IceProd Framework"): runs one attempt of one task on a worker node.

Fetch the resolved task with the passkey, report ``processing``; stage the inputs in
(checksums verified when known); run every module of every tray iteration, measuring each;
stage the outputs out while computing their checksums; send the rest of the logs; clean the
scratch directory; report success or the failure. A heartbeat thread keeps the server
informed, and carries the logs' new bytes (``frazil.pilot.logship``). SIGTERM (the batch
system stopping the job) ends the running module and is reported as a reset that counts no
failure. If the server says the attempt is no longer current (the task was reset meanwhile),
the pilot stops without reporting anything.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import signal
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from frazil.client import PilotClient
from frazil.errors import FrazilError, SpecError, StaleAttempt, TooLarge, TransferError
from frazil.pilot.cache import Cache
from frazil.pilot.execute import Measured, ModuleFailed, Runner, command_for, module_environment
from frazil.pilot.httptransfer import HttpProtocol
from frazil.pilot.logship import LogShipper
from frazil.pilot.modules import UnpackTarball
from frazil.pilot.protocols import SourceMissing
from frazil.pilot.transfer import safe_local_name, stage_in, stage_out
from frazil.wire import (
    BLOB_SCHEME,
    Failure,
    FileRecord,
    Finish,
    LogAck,
    LogChunk,
    Module,
    TaskSpec,
    Usage,
    parse_blob_ref,
)

log = logging.getLogger(__name__)

#: A failure's text is cut to this many characters (the most the server takes).
MAX_ERROR = 100_000

REMOTE_SCHEMES = ("http", "https", "file")
#: A SIGTERM after this share of the requested walltime is the batch system's time limit.
WALLTIME_SHARE = 0.9


class Reporter(Protocol):
    """Where a pilot gets its task and sends its reports: the server, or files (standalone)."""

    def spec(self) -> TaskSpec: ...
    def start(self, host: str) -> None: ...
    def heartbeat(
        self, phase: str | None = None, logs: Sequence[LogChunk] = ()
    ) -> Sequence[LogAck]: ...
    def finish(self, done: Finish) -> None: ...
    def fail(self, failure: Failure) -> str: ...
    def append_log(self, chunk: LogChunk) -> LogAck: ...


class Terminated(FrazilError):
    """The batch system asked the pilot to stop."""


@dataclass(frozen=True)
class PilotOptions:
    """How the site started this pilot."""

    server: str
    task_id: int
    attempt: int
    passkey: str
    workdir: Path
    heartbeat: float = 60.0
    cache: Path | None = None
    keep: bool = False  # keep the scratch directory (debugging)
    md5: bool = False  # also compute md5 of outputs
    fail_exit_code: int = 1  # SGE holds a job's dependents only after exit code 100
    env: Mapping[str, str] | None = None  # added to every module's environment
    #: a pilot of its own attempt beats and cleans up for it; a multi-task pilot beats for
    #: all its tasks at once and removes each task's whole directory itself
    beats: bool = True
    cleans: bool = True


class Pilot:
    """One attempt, from spec to report."""

    def __init__(self, options: PilotOptions, client: Reporter | None = None) -> None:
        self.o = options
        self.client: Reporter = (
            PilotClient(
                options.server, options.task_id, options.attempt, options.passkey, retry_for=600
            )
            if client is None
            else client
        )
        self.workdir = options.workdir
        self.logs = options.workdir.parent / "logs"
        self.runner = Runner(self.workdir, self.logs / "stdout", self.logs / "stderr")
        self.shipper = LogShipper({n: self.logs / n for n in ("stdout", "stderr", "pilot")})
        self.cache = Cache(options.cache) if options.cache else None
        self.phase: str | None = None
        self.terminated = False
        self.stale = False
        self._stop = threading.Event()
        self.stats: dict[str, float] = {}
        self.usage = {"cpu_time": 0.0, "wall_time": 0.0, "max_memory": 0.0}
        self._log = StringIO()
        self.walltime_hours = 0.0

    # -- lifecycle --------------------------------------------------------------------------

    def run(self) -> int:
        """Run the attempt; returns the process exit code (0 success, 1 failure, 143 SIGTERM)."""
        handler = logging.StreamHandler(self._log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        this_thread = threading.get_ident()
        handler.addFilter(lambda record: record.thread == this_thread)  # this task's log only
        logging.getLogger("frazil").addHandler(handler)
        # a multi-task pilot runs attempts in threads and forwards SIGTERM with ``terminate``
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, self._on_term) if main else None
        started = time.monotonic()
        try:
            return self._run(started)
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
            logging.getLogger("frazil").removeHandler(handler)
            self._stop.set()

    def terminate(self) -> None:
        """Stop the attempt as if the batch system sent SIGTERM."""
        self._on_term(signal.SIGTERM, None)

    def _on_term(self, _signum: int, _frame: object) -> None:
        self.terminated = True
        self.runner.stop()

    def _run(self, started: float) -> int:
        log.info(
            "pilot for task %d attempt %d on %s (%s, Python %s)", self.o.task_id, self.o.attempt,
            socket.gethostname(), platform.platform(), platform.python_version(),
        )  # fmt: skip
        try:
            spec = self.client.spec()
            self.walltime_hours = spec.requirements.time
            self.client.start(socket.gethostname())
        except StaleAttempt as exc:
            log.warning("the attempt is no longer current: %s", exc)
            return 1
        except SpecError as exc:  # the server failed the attempt with it: nothing to report
            log.error("nothing to run: %s", exc)
            return 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.o.beats:
            threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()
        files: list[FileRecord] = []
        error: BaseException | None = None
        try:
            self._set_phase("copying_input")
            self._stage_in(spec)
            self._set_phase("running")
            self._run_modules(spec)
            self._set_phase("copying_output")
            files = self._stage_out(spec)
            self._set_phase("cleaning")
        except StaleAttempt as exc:
            self.stale = True
            log.warning("the attempt is no longer current, stopping: %s", exc)
        except (FrazilError, OSError) as exc:
            error = exc
        self.usage["wall_time"] = time.monotonic() - started
        return self._report(error, files)

    def _usage(self) -> Usage:
        return Usage(
            cpu_time=self.usage["cpu_time"], wall_time=self.usage["wall_time"],
            max_memory=self.usage["max_memory"],
        )  # fmt: skip

    def _report(self, error: BaseException | None, files: list[FileRecord]) -> int:
        self._stop.set()
        if not self.stale:
            self._upload_logs()
        if self.o.cleans and not self.o.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.stale:
            return 1
        try:
            if self.terminated:
                self._report_termination()
                return 143
            if error is not None:
                exit_code = error.exit_code if isinstance(error, ModuleFailed) else None
                self.client.fail(
                    Failure(
                        str(error)[:MAX_ERROR], self._usage(), exit_code=exit_code,
                        stats=self.stats,
                    )
                )  # fmt: skip
                return self.o.fail_exit_code
            self.client.finish(Finish(self._usage(), self.stats, tuple(files)))
            return 0
        except StaleAttempt as exc:
            log.warning("the attempt ended meanwhile; nothing reported: %s", exc)
            return 1
        except TooLarge as exc:  # past the server's caps: the attempt fails, saying why
            log.error("the server refused the report: %s", exc)
            reason = f"the server refused the pilot's report: {exc}"
            said = f"; the pilot reported: {error}" if error else ""
            self.client.fail(Failure((reason + said)[:MAX_ERROR], self._usage()))
            return self.o.fail_exit_code

    def _report_termination(self) -> None:
        """SIGTERM: at the walltime it is a timeout (more time next attempt), else a reset."""
        requested = float(self.walltime_hours) * 3600.0
        elapsed = self.usage["wall_time"]
        if requested > 0 and elapsed >= WALLTIME_SHARE * requested:
            self.client.fail(
                Failure(
                    f"stopped at its walltime: SIGTERM after {elapsed:.0f} s of the "
                    f"{requested:.0f} s requested", self._usage(), exhausted=("time",),
                    stats=self.stats, timeout=True,
                )
            )  # fmt: skip
        else:
            self.client.fail(
                Failure("terminated by the batch system (SIGTERM)", self._usage(),
                        stats=self.stats, counts=False)
            )  # fmt: skip

    # -- the phases -------------------------------------------------------------------------

    def _set_phase(self, phase: str) -> None:
        if self.terminated:
            raise Terminated("terminated by the batch system (SIGTERM)")
        self.phase = phase
        self.client.heartbeat(phase)

    def _beat(self) -> None:
        while not self._stop.wait(self.o.heartbeat):
            try:
                self.shipper.take(self.client.heartbeat(self.phase, self.shipper.pending()))
            except StaleAttempt:
                log.warning("heartbeat refused: the attempt is no longer current; stopping")
                self.stale = True
                self.runner.stop()
                return
            except FrazilError as exc:
                log.warning("heartbeat failed: %s", exc)

    def _stage_in(self, spec: TaskSpec) -> None:
        for d in spec.data:
            if d.movement not in ("input", "both") or d.transfer is False:
                continue
            dest = self.workdir / safe_local_name(d.local)
            try:
                self._fetch(d.remote, dest, d.checksum)
            except SourceMissing:
                if d.transfer == "maybe":
                    log.info("optional input %s is absent", d.remote)
                    continue
                raise

    def _stage_out(self, spec: TaskSpec) -> list[FileRecord]:
        files = []
        for d in spec.data:
            if d.movement not in ("output", "both") or d.transfer is False:
                continue
            local = self.workdir / safe_local_name(d.local)
            if d.transfer == "maybe" and not local.exists():
                continue
            try:
                sums = stage_out(local, d.remote, md5=self.o.md5)
            except SourceMissing as exc:
                raise TransferError(f"output {d.local} was not produced: {exc}") from exc
            files.append(
                FileRecord(d.remote, d.movement, d.type, d.local, size=sums.size,
                           checksum_type="sha256", checksum=sums.sha256)
            )  # fmt: skip
        return files

    def _run_modules(self, spec: TaskSpec) -> None:
        for tray in spec.trays:
            for m in tray.modules:
                if self.terminated:
                    raise Terminated("terminated by the batch system (SIGTERM)")
                if self.stale:
                    raise StaleAttempt("the attempt is no longer current: no module starts")
                name = m.name or (m.src or m.class_).rsplit("/", 1)[-1]
                label = f"{tray.name or 'tray'}[{tray.iteration}].{name}"
                self._write_configs(m.configs)
                extra = {**(self.o.env or {}), "FRAZIL_MODULE": label}
                try:
                    if m.class_:
                        paths = [self._module_code(m.url)] if m.url else []
                        measured, stats = self.runner.python_class(
                            label, m.class_, m.parameters, paths=paths, env=extra
                        )
                    else:
                        argv = [*self._command(m), *m.argv]
                        env = module_environment(m.env_clear, extra)
                        measured = self.runner.subprocess(label, argv, env)
                        stats = self.runner.collect_stats(label)
                except ModuleFailed:
                    if self.terminated:
                        raise Terminated("terminated by the batch system (SIGTERM)") from None
                    raise
                self._account(label, measured, stats)

    def _command(self, module: Module) -> list[str]:
        src = module.src
        if urlsplit(src).scheme in (*REMOTE_SCHEMES, BLOB_SCHEME):
            local = self.workdir / ".modules" / safe_local_name(src.rstrip("/").rsplit("/", 1)[-1])
            if not local.exists():
                self._fetch(src, local)
            src = str(local)
        elif Path(src).exists():
            src = str(Path(src).resolve())  # modules run in the task directory
        elif shutil.which(src) is None:
            raise ModuleFailed(f"module source {src!r} not found on {socket.gethostname()}")
        command = command_for(src)
        if module.env_shell:
            command = [*module.env_shell.split(), *command]
        return command

    def _module_code(self, url: str) -> Path:
        """Fetch an external module's code (a .py file or a tarball) into the task's
        directory; returns the directory its class is imported from (first on its path).

        Only https and local files are accepted: code fetched over plain http could be
        changed on the way (the rule for external modules in "The IceProd Framework").
        """
        scheme = urlsplit(url).scheme
        if scheme not in ("https", "file", "", BLOB_SCHEME):
            raise ModuleFailed(f"module code must come over https or from a file, not {url!r}")
        root = self.workdir / ".modules"
        name = safe_local_name(url.rstrip("/").rsplit("/", 1)[-1])
        local = root / name
        if not local.exists():
            self._fetch(url, local)
        if name.endswith(".py"):
            path = root
        elif name.endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")):
            path = root / name.split(".tar")[0].removesuffix(".tgz")
            if not path.exists():
                UnpackTarball({"tarball": str(local), "dest": str(path)}, workdir=root).run({})
        else:
            raise ModuleFailed(f"module code {url!r} is neither a .py file nor a tarball")
        return path

    def _fetch(self, url: str, dest: Path, checksum: str | None = None) -> None:
        """Stage ``url`` in to ``dest``; a file uploaded with the config
        (``frazil-blob:<sha256>/<name>``) comes from this pilot's server with its passkey,
        verified against its checksum."""
        blob = parse_blob_ref(url)
        if blob is None:
            stage_in(url, dest, checksum=checksum, cache=self.cache)
            return
        sha, _ = blob
        server = self.o.server.rstrip("/")
        where = f"{server}/pilot/tasks/{self.o.task_id}/attempts/{self.o.attempt}/blobs/{sha}"
        auth = HttpProtocol(headers={"Authorization": f"Passkey {self.o.passkey}"})
        stage_in(where, dest, checksum=f"sha256:{sha}", cache=self.cache, protocol=auth)

    def _write_configs(self, configs: Mapping[str, Any]) -> None:
        for name, content in configs.items():
            path = self.workdir / safe_local_name(name)
            text = content if isinstance(content, str) else json.dumps(content, indent=2)
            path.write_text(text)

    def _account(self, label: str, measured: Measured, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            self.stats[key] = self.stats.get(key, 0.0) + value
        self.stats[f"{label}.wall_time"] = measured.wall_time
        self.stats[f"{label}.cpu_time"] = measured.cpu_time
        self.stats[f"{label}.max_memory"] = measured.max_memory
        self.usage["cpu_time"] += measured.cpu_time
        self.usage["max_memory"] = max(self.usage["max_memory"], measured.max_memory)

    def _upload_logs(self) -> None:
        """Send what the server does not have of the logs yet (the pilot's own log too)."""
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            (self.logs / "pilot").write_text(self._log.getvalue())
        except OSError as exc:
            log.warning("cannot write the pilot's log: %s", exc)
        failed: set[str] = set()
        for chunk in self.shipper.rest():
            if chunk.name in failed:
                continue
            try:
                self.shipper.take([self.client.append_log(chunk)])
            except FrazilError as exc:
                log.warning("cannot upload log %s: %s", chunk.name, exc)
                failed.add(chunk.name)


def read_passkey(path: Path) -> str:
    """The attempt's passkey, from the file the site wrote (readable by its owner only)."""
    text = path.read_text().strip()
    if not text:
        raise FrazilError(f"{path} holds no passkey")
    if os.stat(path).st_mode & 0o077:
        log.warning("%s is readable by others", path)
    return text
