"""People: ``user add|list|disable|passwd``, ``group add|list|members`` (administrators),
and ``whoami`` (who the server takes you for, and with ``--dataset`` what you may do there
and why), through the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from frazil.cli import connect
from frazil.cli.output import (
    ColumnsOpt,
    JsonOpt,
    Listing,
    Output,
    OutputOpt,
    columns,
    mode,
    print_json,
    print_rows,
    say,
    show,
    when,
)
from frazil.errors import FrazilError

if TYPE_CHECKING:
    from frazil.wire import GroupView, TokenRecord, UserView

user_app = typer.Typer(help="User accounts (administrators).", no_args_is_help=True)
group_app = typer.Typer(help="Groups of users (administrators).", no_args_is_help=True)
tokens_app = typer.Typer(
    help="Your own API tokens on the server (frazil token: an administrator's, on its host).",
    no_args_is_help=True,
)


def _password(given: bool) -> str | None:
    if not given:
        return None
    first = typer.prompt("password", hide_input=True)
    if typer.prompt("again", hide_input=True) != first:
        raise FrazilError("the two passwords differ; nothing was changed")
    return str(first)


def _marked(members: dict[str, bool]) -> str:
    """``alice (write), bob``: names, and who may write."""
    return ", ".join(f"{n} (write)" if w else n for n, w in members.items())


def _users(rows: list[UserView]) -> Listing:
    listing = Listing(columns("user*", "role", "source", "email", "groups", "created*",
                              "disabled*"))  # fmt: skip
    for u in rows:
        listing.add(u.name, u.role, u.source, u.email or "", _marked(u.groups),
                    when(u.created_at), when(u.disabled_at) if u.disabled_at else "")  # fmt: skip
    return listing


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user name.")],
    role: Annotated[str, typer.Option(help="admin, user or readonly.")] = "user",
    password: Annotated[
        bool, typer.Option("--password", help="Ask for a password (typed twice, unseen).")
    ] = False,
    source: Annotated[str, typer.Option(help="local, ldap or oidc: where they log in.")] = "local",
    email: Annotated[str | None, typer.Option(help="Where notifications go.")] = None,
) -> None:
    """Add a user account."""
    secret = _password(password)
    with connect.client() as client:
        made = client.add_user(name, role, password=secret, source=source, email=email)
    say(f"user {made.name} ({made.role}, {made.source}) added")


@user_app.command("list")
def user_list(as_json: JsonOpt = False, output: OutputOpt = None, cols: ColumnsOpt = None) -> None:
    """Every user account, with their groups ("(write)": may control its datasets)."""
    how = mode(output, as_json)
    with connect.client() as client:
        rows = client.users()
    print_rows(rows, how, _users, cols)


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="The user name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the account again.")] = False,
) -> None:
    """Disable an account: its tokens stop working at once (or --enable it again)."""
    with connect.client() as client:
        done = client.disable_user(name, disabled=not enable)
    say(f"user {done.name} {'disabled' if done.disabled_at else 'enabled'}")


@user_app.command("passwd")
def user_passwd(name: Annotated[str, typer.Argument(help="The user name (yours, or any as an "
                                                         "administrator).")]) -> None:  # fmt: skip
    """Set a local account's password (asked for twice, unseen)."""
    secret = _password(True)
    assert secret is not None
    with connect.client() as client:
        client.set_password(name, secret)
    say(f"password of {name} changed")


def _groups(rows: list[GroupView]) -> Listing:
    listing = Listing(columns("group*", "members", "description", "created*"))
    for g in rows:
        listing.add(g.name, _marked(g.members), g.description, when(g.created_at))
    return listing


@group_app.command("add")
def group_add(
    name: Annotated[str, typer.Argument(help="The group name.")],
    description: Annotated[str, typer.Option(help="What the group is.")] = "",
) -> None:
    """Add an empty group."""
    with connect.client() as client:
        made = client.add_group(name, description)
    say(f"group {made.name} added")


@group_app.command("list")
def group_list(as_json: JsonOpt = False, output: OutputOpt = None, cols: ColumnsOpt = None) -> None:
    """Every group with its members ("(write)": may control the group's datasets)."""
    how = mode(output, as_json)
    with connect.client() as client:
        rows = client.groups()
    print_rows(rows, how, _groups, cols)


@group_app.command("members")
def group_members(
    name: Annotated[str, typer.Argument(help="The group name.")],
    add: Annotated[list[str] | None, typer.Option("--add", help="Put this user in.")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="Take them out.")] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Those added may control the group's datasets.")
    ] = False,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """A group's members; --add and --remove change them first."""
    how = mode(output, as_json)
    with connect.client() as client:
        for user in add or []:
            client.set_member(name, user, write=write)
        for user in remove or []:
            client.set_member(name, user, write=None)
        found = [g for g in client.groups() if g.name == name]
    if not found:
        raise FrazilError(f"no group {name!r}")
    members = found[0].members
    if how is Output.JSON:
        print_json(members)
        return
    listing = Listing(columns("user*", "may write"))
    for user, may_write in members.items():
        listing.add(user, "yes" if may_write else "")
    show(listing, how)


@tokens_app.command("list")
def tokens_list(
    as_json: JsonOpt = False, output: OutputOpt = None, cols: ColumnsOpt = None
) -> None:
    """Your tokens: name, scope, when made, last used, expiring, revoked."""
    how = mode(output, as_json)
    with connect.client() as client:
        rows = client.my_tokens()

    def table(rows: list[TokenRecord]) -> Listing:
        listing = Listing(columns("id*#", "name*", "scope", "created*", "last used*",
                                  "expires*", "revoked*"))  # fmt: skip
        for t in rows:
            listing.add(t.id, t.name, t.scope or "", when(t.created_at), when(t.last_used_at),
                        when(t.expires_at), when(t.revoked_at))  # fmt: skip
        return listing

    print_rows(rows, how, table, cols)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="A name for it (where it is used).")],
    scope: Annotated[
        str | None, typer.Option(help="read, write or admin (default: this token's).")
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="It expires after so many days.", min=0.01)
    ] = None,
) -> None:
    """Make a token of your own and print it once (only its hash is kept)."""
    with connect.client() as client:
        made = client.make_token(
            name, scope=scope, expires_in=None if days is None else days * 86_400
        )
    typer.echo(made.token)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Revoke one of your tokens: it stops working at once."""
    with connect.client() as client:
        client.revoke_my_token(token_id)
    say(f"token {token_id} revoked")


def whoami(
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Also what you may do to it, and why.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who the server takes you for: your name, role, this token's scope, your groups."""
    with connect.client() as client:
        me = client.whoami()
        rights = None if dataset is None else client.permissions(dataset)
    if as_json:
        print_json(me if rights is None else rights)
        return
    say(f"{me.name}: {me.role}, token {me.token or '-'} of {me.scope or '-'} scope")
    say(f"groups: {_marked(me.groups) or '-'}")
    if rights is not None:
        for r in rights.rights:
            say(f"{r.right} dataset {rights.dataset}: {'yes' if r.allowed else 'no'} — {r.why}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.add_typer(user_app, name="user")
    app.add_typer(group_app, name="group")
    app.add_typer(tokens_app, name="tokens")
    app.command()(whoami)
