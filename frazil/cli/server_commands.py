"""Commands that run on the server's host, on its database directly: ``init``, ``server``,
``materialize``, ``purge-logs``, ``token``; and the daemons ``site`` and ``pilot``, and ``demo``.

Everything else a user or an administrator does goes through the API (``connect``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from frazil.cli.output import Listing, columns, mode, say, show
from frazil.config import load_settings

if TYPE_CHECKING:
    from frazil.store import Database

ON_HOST = "On the server's host: works on the database directly."
token_app = typer.Typer(help=f"Create, list and revoke API tokens. {ON_HOST}", no_args_is_help=True)


def open_db(*, migrate: bool = False) -> Database:
    """The configured database; it must exist and be migrated unless ``migrate`` is set."""
    from frazil.cli.inprocess import NoDatabase  # noqa: PLC0415
    from frazil.config import sqlite_file  # noqa: PLC0415
    from frazil.store import Database  # noqa: PLC0415

    settings = load_settings()
    files = sqlite_file(settings.db_url)
    if not migrate and files and not files[0].exists():
        raise NoDatabase(f"no database at {files[0]}: `frazil init` creates it")
    db = Database(settings.db_url, timeouts=settings.database)
    if migrate:
        db.migrate()
    else:
        db.check_schema()
    return db


def init() -> None:
    """Create the database, or migrate it to this version of Frazil. On the server's host."""
    home = load_settings().home
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = open_db(migrate=True)
    for path, mode_ in [(home, 0o700), *((p, 0o600) for p in db.sqlite_files())]:
        _make_private(path, mode_)
    say(f"database ready: {db.url!r} (schema {db.current_revision()})")


def _make_private(path: Path, mode_: int) -> None:
    """Take away what group and others may do with ``path`` (Frazil's home: 0700, its
    database: 0600), saying so when it was looser."""
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if current & 0o077:
        os.chmod(path, mode_)
        say(f"{path} was readable by others ({current:04o}): now {mode_:04o}")


def materialize(
    max_jobs: Annotated[int, typer.Option(help="Stop after this many jobs.", min=1)] = 10**9,
) -> None:
    """Create the jobs that submitted datasets still lack (the server does this itself).
    On the server's host."""
    from frazil.services.materialize import materialize_step  # noqa: PLC0415

    db = open_db()
    made = 0
    while made < max_jobs:
        n = materialize_step(db, time.time(), max_jobs=min(max_jobs - made, 50_000))
        if n == 0:
            break
        made += n
    say(f"created {made} jobs")


def purge_logs(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            help="A date (2025-01-31, 2025-01-31T12:00) or an age (30d, 12h, 90m, 2w).",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")
    ] = False,
) -> None:
    """Remove the logs (files and rows) of attempts that ended before then. On the server's
    host: it works on the database and the log directory directly."""
    from frazil.server.app import default_log_dir  # noqa: PLC0415
    from frazil.services.task_logs import purge  # noqa: PLC0415
    from frazil.store.log_files import LogFiles  # noqa: PLC0415

    now = time.time()
    cutoff = parse_before(before, now)
    settings = load_settings().server
    db = open_db()
    try:
        files = LogFiles(settings.log_dir or default_log_dir(db), settings.max_log_bytes)
        done = purge(db, files, cutoff, dry_run=dry_run)
    finally:
        db.dispose()
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cutoff))
    verb = "would remove" if dry_run else "removed"
    say(f"{verb} {done.logs} logs of {done.attempts} attempts that ended before {when}: "
        f"{done.bytes:,} bytes")  # fmt: skip


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_before(text: str, now: float) -> float:
    """``--before``: an age (``30d``: that long before ``now``) or a local date and time."""
    import datetime  # noqa: PLC0415

    value = text.strip()
    unit = _AGE_UNITS.get(value[-1:].lower())
    if unit is not None and value[:-1].replace(".", "", 1).isdigit():
        return now - float(value[:-1]) * unit
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a date (2025-01-31, 2025-01-31T12:00) nor an age "
            "(30d, 12h, 90m, 2w)",
            param_hint="--before",
        ) from None
    return moment.timestamp()


@token_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Whose token: a person, or a site's name.")],
    role: Annotated[str, typer.Option(help="admin, user or site.")] = "user",
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from frazil.services import tokens  # noqa: PLC0415

    _, value = tokens.create_token(open_db(), name, role, now=time.time())
    typer.echo(value)


@token_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List tokens (never the tokens themselves)."""
    from frazil.services import tokens  # noqa: PLC0415

    rows = tokens.list_tokens(open_db())
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return

    def when(t: float | None) -> str:
        return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))

    listing = Listing(columns("id*#", "name*", "role", "created", "last used", "revoked"))
    for r in rows:
        listing.add(r.id, r.name, r.role.value, when(r.created_at), when(r.last_used_at),
                    "-" if r.revoked_at is None else when(r.revoked_at))  # fmt: skip
    show(listing, mode(None))


@token_app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Make a token unusable."""
    from frazil.services import tokens  # noqa: PLC0415

    tokens.revoke_token(open_db(), token_id, now=time.time())
    say(f"token {token_id} revoked")


def server(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the API and the background daemons (until interrupted). On the server's host."""
    from frazil.server.main import serve  # noqa: PLC0415 - the web stack only when serving

    settings = load_settings()
    server_settings = dataclasses.replace(
        settings.server,
        host=host or settings.server.host,
        port=settings.server.port if port is None else port,
    )
    serve(open_db(), server_settings, validation=settings.validation, quota=settings.quota)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command()(init)
    app.command()(materialize)
    app.command("purge-logs")(purge_logs)
    app.add_typer(token_app, name="token")
    app.command()(server)


def site(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The site's site.toml.")
    ] = None,
    once: Annotated[bool, typer.Option(help="Run one round; exit 1 if it failed.")] = False,
    example_config: Annotated[
        bool, typer.Option("--example-config", help="Print a sample site.toml and exit.")
    ] = False,
) -> None:
    """Run a site daemon: claim tasks that fit and run pilots through the batch plugin.

    It stops (exit 1) when the server refuses its token: a token that is unknown, revoked,
    another site's or not a site token."""
    if example_config:
        from frazil.site.config import example_config as example  # noqa: PLC0415

        typer.echo(example(), nl=False)
        return
    if config is None:
        raise typer.BadParameter("is needed (or --example-config)", param_hint="'--config'")
    from frazil.site.main import main as site_main  # noqa: PLC0415

    site_main(config, once=once)


def pilot(ctx: typer.Context) -> None:
    """Run one attempt on this node (what a site's batch job runs; see --help)."""
    from frazil.pilot.__main__ import main as pilot_main  # noqa: PLC0415

    raise typer.Exit(pilot_main(list(ctx.args)))


def register_runners(app: typer.Typer) -> None:
    """Add the site, pilot and demo commands."""
    from frazil.cli.demo import demo  # noqa: PLC0415 - light: it imports the server to run

    app.command()(site)
    app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(pilot)
    app.command()(demo)
