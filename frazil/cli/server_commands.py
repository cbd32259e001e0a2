"""Commands for running the service: ``frazil server``, ``frazil token``, ``frazil quota``."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from frazil.cli.db_commands import actor, open_db
from frazil.cli.text import console, shown
from frazil.config import load_settings
from frazil.services import quota, tokens
from frazil.wire import Quota

out = console()
token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


@token_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Whose token: a person, or a site's name.")],
    role: Annotated[str, typer.Option(help="admin, user or site.")] = "user",
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    _, value = tokens.create_token(open_db(), name, role, now=time.time())
    typer.echo(value)


@token_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List tokens (never the tokens themselves)."""
    rows = tokens.list_tokens(open_db())
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return

    def when(t: float | None) -> str:
        return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))

    table = Table("id", "name", "role", "created", "last used", "revoked")
    for r in rows:
        table.add_row(
            str(r.id), shown(r.name), r.role.value, when(r.created_at), when(r.last_used_at),
            "-" if r.revoked_at is None else when(r.revoked_at),
        )  # fmt: skip
    out.print(table)


@token_app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Make a token unusable."""
    tokens.revoke_token(open_db(), token_id, now=time.time())
    out.print(f"token {token_id} revoked")


quota_app = typer.Typer(
    help="Show and set submitters' quotas (defaults: \\[quota] in frazil.toml).",
    no_args_is_help=True,
)


def _cap(what: str) -> Any:
    return typer.Option(min=0, max=10**12, help=what)


def _print_quotas(rows: list[Quota], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(q) for q in rows], indent=2))
        return
    table = Table("submitter", "jobs/dataset", "tasks/dataset", "jobs open", "tasks open")
    for q in rows:

        def cap(name: str, q: Quota = q) -> str:
            mark = "*" if name in q.overridden else ""
            return f"{getattr(q, name):,}{mark}"

        table.add_row(
            shown(q.submitter), cap("dataset_jobs"), cap("dataset_tasks"),
            f"{q.usage.jobs:,} of {cap('jobs')}", f"{q.usage.tasks:,} of {cap('tasks')}",
        )  # fmt: skip
    out.print(table)
    out.print("* set for this submitter; the others are the defaults (\\[quota] in frazil.toml)")


@quota_app.command("show")
def quota_show(
    submitter: Annotated[
        str | None, typer.Argument(help="One submitter (default: all set).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A submitter's caps and what they hold (or every submitter with caps of their own)."""
    defaults = load_settings().quota
    db = open_db()
    if submitter is None:
        rows = quota.list_quotas(db, defaults)
    else:
        rows = [quota.get_quota(db, submitter, defaults)]
    _print_quotas(rows, as_json)


@quota_app.command("set")
def quota_set(
    submitter: Annotated[str, typer.Argument(help="The dataset owner (a token's name).")],
    dataset_jobs: Annotated[int | None, _cap("Jobs in one dataset.")] = None,
    dataset_tasks: Annotated[int | None, _cap("Tasks in one dataset.")] = None,
    jobs: Annotated[int | None, _cap("Jobs not yet complete, all datasets.")] = None,
    tasks: Annotated[int | None, _cap("Tasks of those jobs.")] = None,
) -> None:
    """Set a submitter's caps (the ones given; the others stay)."""
    given = {"dataset_jobs": dataset_jobs, "dataset_tasks": dataset_tasks, "jobs": jobs,
             "tasks": tasks}  # fmt: skip
    caps = {k: v for k, v in given.items() if v is not None}
    if not caps:
        raise typer.BadParameter("give at least one of --dataset-jobs, --dataset-tasks, ...")
    q = quota.set_quota(
        open_db(), submitter, load_settings().quota, now=time.time(), actor=actor(), **caps
    )
    _print_quotas([q], as_json=False)


@quota_app.command("clear")
def quota_clear(submitter: Annotated[str, typer.Argument(help="The dataset owner.")]) -> None:
    """Give a submitter the default caps again."""
    _print_quotas([quota.clear_quota(open_db(), submitter, load_settings().quota)], False)


def server(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the API and the background daemons (until interrupted)."""
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
    app.add_typer(token_app, name="token")
    app.add_typer(quota_app, name="quota")
    app.command()(server)


def site(
    config: Annotated[Path, typer.Option("--config", "-c", help="The site's site.toml.")],
    once: Annotated[bool, typer.Option(help="Run one round and exit.")] = False,
) -> None:
    """Run a site daemon: claim tasks that fit and run pilots through the batch plugin."""
    from frazil.site.main import main as site_main  # noqa: PLC0415

    site_main(config, once=once)


def pilot(ctx: typer.Context) -> None:
    """Run one attempt on this node (what a site's batch job runs; see --help)."""
    from frazil.pilot.__main__ import main as pilot_main  # noqa: PLC0415

    raise typer.Exit(pilot_main(list(ctx.args)))


def register_runners(app: typer.Typer) -> None:
    """Add the site, pilot and demo commands."""
    from frazil.cli.demo import demo  # noqa: PLC0415

    app.command()(site)
    app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(pilot)
    app.command()(demo)
