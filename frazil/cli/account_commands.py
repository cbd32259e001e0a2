"""Who the command line speaks as, and where: ``login``, ``logout``, ``servers``; and the
administrators' ``quota`` (through the API, like every user command)."""

from __future__ import annotations

import re
import urllib.parse
from typing import TYPE_CHECKING, Annotated

import typer

from frazil.cli import connect, credentials
from frazil.cli.output import (
    ColumnsOpt,
    JsonOpt,
    Listing,
    Output,
    OutputOpt,
    columns,
    mode,
    print_json,
    say,
    show,
)
from frazil.errors import FrazilError

if TYPE_CHECKING:
    from frazil.wire import Quota


def _default_name(url: str) -> str:
    host = urllib.parse.urlsplit(url).hostname or "server"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", host)[:64] or "server"


def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. https://frazil.example.org.")],
    user: Annotated[
        str | None,
        typer.Option(help="Your user name (asked for when not given: default your login name)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="An API token to keep instead of logging in with a password.", show_default=False
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="A name for this server (default: its host name).")
    ] = None,
    default: Annotated[
        bool, typer.Option(help="Use this server when a command names none.")
    ] = True,
) -> None:
    """Log in to a server with your user name and password (asked for, unseen), or keep a
    --token; the server's token is kept in your credentials file."""
    import getpass  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from frazil.client import Client, log_in  # noqa: PLC0415

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FrazilError(f"{url!r} is not a server's address (http:// or https://)")
    if token is None:
        who = user or typer.prompt("user", default=getpass.getuser())
        password = typer.prompt("password", hide_input=True)
        label = re.sub(r"[^A-Za-z0-9_.@-]", "-", f"cli@{socket.gethostname()}")[:100]
        token = log_in(url, who, password, token_name=label, retry_for=connect.RETRY_SECONDS).token
    server = credentials.Server(credentials.check_name(name or _default_name(url)), url, token)
    with Client(url, token, retry_for=connect.RETRY_SECONDS) as client:
        me = client.whoami()
    file = credentials.path()
    current = credentials.load(file)
    servers = {**current.servers, server.name: server}
    chosen = server.name if default or current.default is None else current.default
    credentials.save(file, credentials.Credentials(servers, chosen))
    say(f"logged in to {url} as {me.name} ({me.role}) as server {server.name!r}"
        + (" (the default)" if chosen == server.name else "") + f"; kept in {file}")  # fmt: skip


def logout(
    name: Annotated[
        str | None, typer.Argument(help="The server (default: the default one).")
    ] = None,
) -> None:
    """Forget a server's token."""
    file = credentials.path()
    current = credentials.load(file)
    key = name or current.default
    if key is None or key not in current.servers:
        raise FrazilError(f"not logged in to {key or 'any server'} ({file})")
    servers = {k: v for k, v in current.servers.items() if k != key}
    credentials.save(file, credentials.Credentials(
        servers, None if current.default == key else current.default))  # fmt: skip
    say(f"logged out of {key!r}")


def servers(as_json: JsonOpt = False, output: OutputOpt = None) -> None:
    """The servers you logged in to (never their tokens)."""
    file = credentials.path()
    current = credentials.load(file)
    rows = [{"name": s.name, "url": s.url, "default": s.name == current.default}
            for s in current.servers.values()]  # fmt: skip
    how = mode(output, as_json)
    if how is Output.JSON:
        print_json(rows)
        return
    listing = Listing(columns("name*", "url", "default"))
    for r in rows:
        listing.add(r["name"], r["url"], "yes" if r["default"] else "")
    show(listing, how)


quota_app = typer.Typer(
    help="Show and set submitters' quotas (administrators; defaults: \\[quota] in frazil.toml).",
    no_args_is_help=True,
)


def _cap(what: str) -> object:
    return typer.Option(min=0, max=10**12, help=what)


def _print_quotas(rows: list[Quota], as_json: bool, output: OutputOpt = None,
                  cols: ColumnsOpt = None) -> None:  # fmt: skip
    how = mode(output, as_json)
    if how is Output.JSON:
        print_json(rows)
        return
    listing = Listing(columns("submitter*", "jobs/dataset#", "tasks/dataset#", "jobs open",
                              "tasks open"))  # fmt: skip
    for q in rows:

        def cap(name: str, q: Quota = q) -> str:
            mark = "*" if name in q.overridden else ""
            return f"{getattr(q, name):,}{mark}"

        jobs, tasks = f"{q.usage.jobs:,} of {cap('jobs')}", f"{q.usage.tasks:,} of {cap('tasks')}"
        listing.add(q.submitter, cap("dataset_jobs"), cap("dataset_tasks"), jobs, tasks)
    show(listing, how, cols)
    say("* set for this submitter; the others are the defaults ([quota] in frazil.toml)")


@quota_app.command("show")
def quota_show(
    submitter: Annotated[
        str | None, typer.Argument(help="One submitter (default: all set).")
    ] = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    cols: ColumnsOpt = None,
) -> None:
    """A submitter's caps and what they hold (or every submitter with caps of their own)."""
    with connect.client() as client:
        rows = client.quotas() if submitter is None else [client.quota(submitter)]
    _print_quotas(rows, as_json, output, cols)


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
    with connect.client() as client:
        q = client.set_quota(submitter, **caps)
    _print_quotas([q], as_json=False)


@quota_app.command("clear")
def quota_clear(submitter: Annotated[str, typer.Argument(help="The dataset owner.")]) -> None:
    """Give a submitter the default caps again."""
    with connect.client() as client:
        q = client.clear_quota(submitter)
    _print_quotas([q], as_json=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command()(login)
    app.command()(logout)
    app.command()(servers)
    app.add_typer(quota_app, name="quota")
