"""The module host: the process that hands a pilot's class runs to its workers.

``python -m frazil.pilot.modulehost``, started by the pilot on first use (``classrun``):
single-threaded, with the pilot's own modules imported but never a task's code. It reads
request lines on stdin and forks workers (``worker``), each a process that runs class runs one
at a time; it keeps one idle worker ahead of the requests, hands each request to an idle one
and answers on stdout ``{"id", "pid"}`` (the worker's process, its own process group) once
the run started, ``{"id", "status", "cpu_time", "max_memory", ...}`` once it ended (with the
class's statistics and error as its worker answered them, or the wait status of a worker
that died in it), or ``{"id", "error"}``.

It ends when its stdin does (the pilot ended); its workers die with it (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import select
import shutil
import signal
import tempfile
import traceback
from dataclasses import dataclass
from typing import Any

from frazil.pilot import worker

#: Idle workers kept beyond the one always ready (each is a copy-on-write fork of the host).
MAX_IDLE = 8


@dataclass
class _Worker:
    pid: int
    requests: int  # the pipe the host writes requests to
    answers: int  # the pipe the host reads outcomes from
    run: int | None = None  # the request it runs
    buffer: bytes = b""
    accounted: float = 0.0  # the CPU seconds of its runs answered so far
    ended: bool = False  # its answers reached their end
    closed: bool = False


class _Host:
    """The workers: idle ones, and busy ones by the descriptor of their answers."""

    def __init__(self, answers: int, stops: int, wake: tuple[int, int], cache: str) -> None:
        self.answers = answers
        self.stops = stops
        self.wake = wake
        self.cache = cache
        self.idle: list[_Worker] = []
        self.busy: dict[int, _Worker] = {}
        self.last = 0  # the newest request read (the pilot numbers them 1, 2, ...)
        self.early: set[int] = set()  # requests stopped before they were read

    def loop(self) -> None:
        self._ready()
        buffer = stops = b""
        while True:
            listening = [fd for fd, w in self.busy.items() if not w.ended]
            stopping = [self.stops] if self.stops >= 0 else []
            ready, _, _ = select.select([0, self.wake[0], *stopping, *listening], [], [])
            if self.wake[0] in ready:
                os.read(self.wake[0], 4096)
            for fd in ready:
                if fd in self.busy:
                    self._hear(self.busy[fd])
            if 0 in ready:  # requests before stops: a stop may follow its request closely
                data = os.read(0, 1 << 16)
                if not data:  # the pilot ended; the workers follow (PR_SET_PDEATHSIG)
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._start(line)
            if self.stops >= 0 and self.stops in ready:
                data = os.read(self.stops, 4096)
                if not data:
                    self.stops = -1  # the pilot closed it: no more stop requests
                stops += data
                while b"\n" in stops:
                    line, stops = stops.split(b"\n", 1)
                    self._stop(json.loads(line)["stop"])
            self._reap()
            self._ready()

    def _start(self, line: bytes) -> None:
        """Hand the request to an idle worker (a new one if none is left) and answer with
        its process; the next idle one is forked after the answer, not before the run."""
        number = json.loads(line)["id"]
        self.last = max(self.last, number)
        if number in self.early:  # stopped before it reached us: it never runs
            self.early.discard(number)
            _answer(self.answers, {
                "id": number, "status": signal.SIGTERM, "cpu_time": 0.0, "max_memory": 0.0,
            })  # fmt: skip
            return
        for _ in range(2):
            w = self.idle.pop() if self.idle else self._fork()
            if w is None:
                break
            try:
                _write_all(w.requests, line + b"\n")
            except OSError:  # it died waiting: it is reaped as such
                self._retire(w)
                continue
            w.run = number
            self.busy[w.answers] = w
            _answer(self.answers, {"id": number, "pid": w.pid})
            return
        _answer(self.answers, {"id": number, "error": "cannot fork a worker"})

    def _stop(self, number: int) -> None:
        """Terminate the worker that runs request ``number``, if it still does (a request
        not read yet is remembered: the pilot's ids grow, and its stop may come first)."""
        if number > self.last:
            self.early.add(number)
            return
        w = next((w for w in self.busy.values() if w.run == number), None)
        if w is not None:
            self._hear(w)  # it may have ended the run already
        if w is None or w.run != number:
            return
        try:
            os.killpg(w.pid, signal.SIGTERM)
        except ProcessLookupError:  # not yet a group of its own
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGTERM)

    def _ready(self) -> None:
        if not self.idle and (w := self._fork()) is not None:
            self.idle.append(w)

    def _hear(self, w: _Worker) -> None:
        """Read what a busy worker answered; a complete answer ends its run."""
        with contextlib.suppress(BlockingIOError):
            data = os.read(w.answers, 1 << 16)
            if not data:
                w.ended = True  # it ended: reaped as such
                return
            w.buffer += data
        if b"\n" not in w.buffer or w.run is None:
            return
        line, w.buffer = w.buffer.split(b"\n", 1)
        outcome = json.loads(line)
        w.accounted += outcome["cpu_time"]
        _answer(self.answers, {
            "id": w.run, "status": 0,
            "cpu_time": outcome["cpu_time"], "max_memory": outcome["max_memory"],
            "retired": outcome["retire"], "finished": True,
            "stats": outcome["stats"], "run_error": outcome["error"],
        })  # fmt: skip
        del self.busy[w.answers]
        w.run = None
        if outcome["retire"] or len(self.idle) > MAX_IDLE:
            self._retire(w)
        else:
            self.idle.append(w)

    def _retire(self, w: _Worker) -> None:
        if w.closed:
            return
        w.closed = True
        for fd in (w.requests, w.answers):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.busy.pop(w.answers, None)
        if w in self.idle:
            self.idle.remove(w)

    def _reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = next((w for w in (*self.busy.values(), *self.idle) if w.pid == pid), None)
            if w is None:
                continue
            if w.run is not None:
                self._hear(w)  # it may have answered just before it ended
            if w.run is not None:  # it died in the run
                _answer(self.answers, {
                    "id": w.run, "status": status,
                    "cpu_time": max(0.0, usage.ru_utime + usage.ru_stime - w.accounted),
                    "max_memory": usage.ru_maxrss / 1024 / 1024,  # KB -> GB
                })  # fmt: skip
            self._retire(w)

    def _fork(self) -> _Worker | None:
        host = os.getpid()
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (requests_r, requests_w, answers_r, answers_w):
                os.close(fd)
            return None
        if pid:
            os.close(requests_r)
            os.close(answers_w)
            os.set_blocking(answers_r, False)
            with contextlib.suppress(OSError):  # the worker does it too; whoever is first
                os.setpgid(pid, pid)
            return _Worker(pid, requests_w, answers_r)
        code = 70
        try:
            code = worker.main(requests_r, answers_w, host, self.cache)
        except BaseException:  # whatever it is, the worker must end here
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(code)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _answer(fd: int, message: dict[str, Any]) -> None:
    _write_all(fd, (json.dumps(message) + "\n").encode())


def serve(stops: int) -> None:
    """The host: hand each request line on stdin to a worker, answer on stdout, until EOF;
    stop requests (``{"stop": id}``) come on ``stops``."""
    answers = os.dup(1)
    os.dup2(2, 1)  # stray prints of the host itself go to the pilot's stderr
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # it ends with the pilot: at EOF
    # what the host holds now is never collected: a worker's collections would otherwise
    # walk (and so copy, page by page) the whole inherited heap
    gc.collect()
    gc.freeze()
    worker.inherited_output()
    cache = tempfile.mkdtemp(prefix="frazil-code-")
    try:
        _Host(answers, stops, (wake_r, wake_w), cache).loop()
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The module host of a pilot's class runs.")
    parser.add_argument("--stops", type=int, required=True, help="descriptor of stop requests")
    serve(parser.parse_args().stops)
