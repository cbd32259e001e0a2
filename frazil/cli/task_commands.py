"""What users read about one task: ``show task`` (attempts, files, logs, errors) and
``logs`` (one log, whole, or followed while the attempt runs), through the API."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from frazil.cli import connect
from frazil.cli.output import (
    JsonOpt,
    Listing,
    Output,
    OutputOpt,
    columns,
    mode,
    print_json,
    say,
    show,
    unit,
    when,
)
from frazil.cli.text import plain
from frazil.errors import FrazilError, NotFound

if TYPE_CHECKING:
    from frazil.client import Client
    from frazil.wire import TaskDetail


def show_task(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Errors in full (default: their last line).")
    ] = False,
) -> None:
    """A task with its attempts, errors and statistics."""
    with connect.client() as client:
        detail = client.task(task_id)
    how = mode(output, as_json)
    if how is Output.JSON:
        print_json(detail)
        return
    t = detail.task
    say(
        f"task {t.id}: dataset {t.dataset_id} job {t.job_index} {t.name} — "
        f"{t.status}{f' ({t.phase})' if t.phase else ''}, {t.failures} failure(s)"
    )
    say(f"after: {', '.join(detail.depends_on) or '-'}")
    say(
        f"needs: cpu {t.cpu}, gpu {t.gpu}, memory {t.memory:g} GB, disk {t.disk:g} GB, "
        f"time {t.time:g} h"
    )
    listing = Listing(columns(
        "attempt*#", "site", "host", "pilot#", "batch id", "outcome", "claimed*", "ended*",
        "exit#", "cpu s#", "wall s#", "memory GB#",
    ))  # fmt: skip
    for a in detail.attempts:
        listing.add(
            a.number, a.site, a.host, a.pilot_id, a.batch_id, a.outcome, when(a.claimed_at),
            when(a.ended_at), a.exit_code, _num(a.cpu_time), _num(a.wall_time),
            _num(a.max_memory),
        )  # fmt: skip
    show(listing, how)
    for a in detail.attempts:
        if a.stats:
            stats = ", ".join(
                f"{k}={v:g}{unit(k) and ' ' + unit(k)}" for k, v in sorted(a.stats.items())
            )
            say(f"attempt {a.number} statistics: {stats}")
        if a.files:
            files = Listing(columns("movement", "local*", "url", "type", "bytes#", "checksum"),
                            title=f"attempt {a.number} files")  # fmt: skip
            for f in a.files:
                checksum = f"{f.checksum_type}:{f.checksum}" if f.checksum else ""
                files.add(f.movement, f.local, f.url, f.type, _bytes(f.size), checksum)
            show(files, how)
        if a.logs:
            say(f"attempt {a.number} logs: {', '.join(a.logs)} "
                f"(frazil logs {t.id} --attempt {a.number})")  # fmt: skip
        if a.error:
            say(f"attempt {a.number} error: {_error(a.error, verbose)}")


def logs_cmd(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    attempt: Annotated[
        int | None, typer.Option("--attempt", "-a", help="This attempt (default: the last).")
    ] = None,
    stderr: Annotated[bool, typer.Option("--stderr", help="The task's stderr.")] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="Another log: pilot, or a module's.")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Print what the attempt writes as it runs, until it ends."
        ),
    ] = False,
) -> None:
    """A task's log (its stdout unless told otherwise), whole, as the server keeps it."""
    wanted = name or ("stderr" if stderr else "stdout")
    with connect.client() as client:
        if follow:
            _follow(client, task_id, wanted, attempt)
            return
        kept = client.logs(task_id, attempt)
        if not kept:
            which = f"attempt {attempt}" if attempt is not None else "any attempt"
            raise FrazilError(f"task {task_id} has no logs for {which}")
        number = attempt if attempt is not None else max(v.attempt for v in kept)
        mine = {v.name: v for v in kept if v.attempt == number}
        if wanted not in mine:
            raise FrazilError(
                f"task {task_id} attempt {number} has no log {wanted!r} "
                f"(logs: {', '.join(sorted(mine)) or 'none'})"
            )
        part = client.log_part(task_id, wanted, attempt=number)
    text = part.data.decode(errors="replace")
    text = plain(text) if sys.stdout.isatty() else text
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


#: How often ``frazil logs --follow`` asks for more (seconds).
FOLLOW_EVERY = 1.0
#: The states in which a task's attempt may still run.
ACTIVE = ("queued", "processing")


def _follow(client: Client, task_id: int, name: str, attempt: int | None) -> None:
    """Print the log as it grows, until its attempt has ended (and all of it is printed)."""
    import codecs  # noqa: PLC0415

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tty = sys.stdout.isatty()
    offset, number, ended = 0, attempt, False
    while True:
        try:
            part = client.log_part(task_id, name, attempt=number, start=offset)
        except NotFound:
            if number is not None or client.task(task_id).attempts:
                raise
            time.sleep(FOLLOW_EVERY)  # no attempt yet: the task waits for one
            continue
        number = part.attempt
        if part.data:
            text = decoder.decode(part.data)
            sys.stdout.write(plain(text) if tty else text)
            sys.stdout.flush()
            offset = part.end
            continue  # more may be there already
        if ended:
            break
        ended = _ended(client.task(task_id), number)
        if not ended:
            time.sleep(FOLLOW_EVERY)
    rest = decoder.decode(b"", final=True)
    sys.stdout.write(plain(rest) if tty else rest)
    sys.stdout.flush()


def _ended(detail: TaskDetail, number: int) -> bool:
    """Whether attempt ``number`` of the task is over (its logs are all sent by then)."""
    mine = [a for a in detail.attempts if a.number == number]
    return not mine or mine[0].outcome != "open" or detail.task.status not in ACTIVE


def _bytes(size: int | None) -> str:
    return "" if size is None else f"{size:,}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _error(text: str, verbose: bool) -> str:
    """An error for a listing: in full, or its last non-empty line (a traceback's verdict)
    with a pointer to the rest."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if verbose or len(lines) <= 1:
        return text.strip()
    return f"{lines[-1].strip()} (+{len(lines) - 1} lines: --verbose)"


def register(app: typer.Typer, show_group: typer.Typer) -> None:
    """Add this module's commands to the application (and to its ``show`` group)."""
    show_group.command("task")(show_task)
    app.command("logs")(logs_cmd)
