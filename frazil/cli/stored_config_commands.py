"""A dataset's stored config, over the API: ``frazil config show | edit | diff | versions``;
and ``frazil delete``.

``frazil config edit`` is the download-edit-submit cycle of "The IceProd Framework": the
current version is written as YAML to a private temporary file, the user's editor opens it
(``$VISUAL``, else ``$EDITOR``, else ``vi``; split into an argument list, never run by a
shell), and a changed file is stored as the next version once the server has checked it. A
rejected edit is shown with the file's name and lines, and may be edited again; given up, the
file stays where it is. ``frazil show config FILE`` is the other one: a config file here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from frazil.cli import connect
from frazil.cli.dataset_commands import DatasetArg
from frazil.cli.output import (
    ColumnsOpt,
    JsonOpt,
    Listing,
    Output,
    OutputOpt,
    columns,
    mode,
    note,
    print_json,
    say,
    show,
    when,
)
from frazil.cli.text import console, shown
from frazil.errors import (
    ConfigError,
    ExpressionError,
    FrazilError,
    Problem,
    Rejected,
    SpecError,
)

if TYPE_CHECKING:
    from frazil.client import Client
    from frazil.wire import DatasetView

VersionOpt = Annotated[
    int | None, typer.Option("--version", help="This version (default: the current one).", min=1)
]
#: what a server says of an edit that the user can fix by editing again
FIXABLE = (ConfigError, ExpressionError, SpecError, Rejected)


def yaml_text(data: Any) -> str:
    """A stored config as YAML: keys in the order stored, text with newlines as blocks."""
    import yaml  # noqa: PLC0415

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None  # the emitter quotes what a block cannot hold
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    dumped: str = yaml.dump(
        data, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
        width=1_000_000,
    )  # fmt: skip
    return dumped


def _named(d: DatasetView) -> str:
    return f"dataset {d.id}{f' ({d.alias})' if d.alias else ''}"


# -- show, versions -----------------------------------------------------------------------


def show_cmd(dataset: DatasetArg, version: VersionOpt = None, as_json: JsonOpt = False) -> None:
    """A dataset's stored config (the current version by default), as YAML."""
    with connect.client() as client:
        data = client.config(dataset, version)
    if as_json:
        print_json(data)
    else:
        sys.stdout.write(yaml_text(data))


def versions_cmd(
    dataset: DatasetArg, as_json: JsonOpt = False, output: OutputOpt = None,
    cols: ColumnsOpt = None,
) -> None:  # fmt: skip
    """The versions of a dataset's config: when, who and why."""
    with connect.client() as client:
        rows = client.config_versions(dataset)
    how = mode(output, as_json)
    if how is Output.JSON:
        print_json(rows)
        return
    listing = Listing(columns("version*#", "current", "created*", "by", "comment"))
    for v in rows:
        listing.add(v.version, "yes" if v.current else "", when(v.created_at), v.created_by,
                    v.comment)  # fmt: skip
    show(listing, how, cols)


# -- diff ---------------------------------------------------------------------------------


def diff_cmd(
    dataset: DatasetArg,
    old: Annotated[
        int | None, typer.Argument(help="Version (default: the one before NEW).", min=1)
    ] = None,
    new: Annotated[
        int | None, typer.Argument(help="Version (default: the current one).", min=1)
    ] = None,
) -> None:
    """A unified diff of two versions of a dataset's config, as YAML (by default, the
    previous version against the current one)."""
    import difflib  # noqa: PLC0415

    with connect.client() as client:
        d = client.dataset(dataset).dataset
        after = d.config_version if new is None else new
        before = after - 1 if old is None else old
        if before < 1:
            note(f"nothing to compare: {_named(d)} has one config version only")
            return
        if before == after:
            note(f"nothing to compare: version {before} against itself")
            return
        a, b = (yaml_text(client.config(d.id, v)) for v in (before, after))
    lines = list(
        difflib.unified_diff(
            a.splitlines(keepends=True), b.splitlines(keepends=True),
            fromfile=f"dataset {d.id} config v{before}", tofile=f"dataset {d.id} config v{after}",
        )
    )  # fmt: skip
    if not lines:
        note(f"versions {before} and {after} are the same config")
    sys.stdout.writelines(lines)


# -- edit ---------------------------------------------------------------------------------


def _editor() -> list[str]:
    """The user's editor as an argument list."""
    import shlex  # noqa: PLC0415

    for name in ("VISUAL", "EDITOR"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                raise FrazilError(f"${name} cannot be split into words: {exc}") from None
            if argv:
                return argv
    return ["vi"]


def _run_editor(argv: list[str], path: Path) -> None:
    import signal  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    # Ctrl-C belongs to the editor while it runs (a handler, not SIG_IGN: the editor must not
    # inherit an ignored SIGINT)
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        done = subprocess.run([*argv, str(path)], check=False)  # noqa: S603 - the user's editor
    except OSError as exc:
        raise FrazilError(f"cannot start the editor {argv[0]!r}: {exc.strerror or exc}") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if done.returncode != 0:
        raise FrazilError(f"the editor {argv[0]!r} exited with status {done.returncode}")


def _private_file(d: DatasetView, version: int, text: str) -> Path:
    """A new temporary file only its user may read, holding ``text``."""
    import tempfile  # noqa: PLC0415

    fd, name = tempfile.mkstemp(prefix=f"frazil-dataset-{d.id}-v{version}-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(name)


def _problems(path: Path, exc: FrazilError) -> None:
    """What the server found wrong, each with the file and line."""
    err = console(stderr=True)
    if isinstance(exc, ConfigError):
        for p in exc.problems:
            err.print(f"[red]error[/red] {shown(_located(path, p))}")
    else:
        err.print(f"[red]error[/red] {shown(f'{path}: {exc}')}")


def _located(path: Path, p: Problem) -> str:
    where = f"{path}:{p.line}" if p.line is not None else str(path)
    return f"{where}: {p.path + ': ' if p.path else ''}{p.message}"


def _again() -> bool:
    try:
        return typer.confirm("edit again?", default=True, err=True)
    except typer.Abort:  # end of input: no one to ask
        return False


def edit_cmd(
    dataset: DatasetArg,
    comment: Annotated[
        str, typer.Option("--comment", "-m", help="Why (kept with the version).")
    ] = "",
) -> None:
    """Edit a dataset's config in your editor ($VISUAL, $EDITOR or vi) and store it as a
    new version once the server has checked it."""
    with connect.client() as client:
        d = client.dataset(dataset).dataset
        base = d.config_version
        header = (
            f"# {_named(d)}, config version {base}: save to store a new version; "
            "unchanged, nothing is stored\n"
        )
        stored = header + yaml_text(client.config(d.id, base))
        path = _private_file(d, base, stored)
        try:
            kept = _edit(client, d, base, path, stored, comment)
        except BaseException:
            _keep_or_remove(path, stored)
            raise
    if not kept:
        return
    note(f"your edit is kept in {path}")
    raise typer.Exit(1)


def _keep_or_remove(path: Path, stored: str) -> None:
    """Remove the file unless it holds an edit (which is then kept, and said so)."""
    try:
        changed = path.read_text(encoding="utf-8") != stored
    except (OSError, UnicodeDecodeError):
        changed = True
    if changed and path.exists():
        note(f"your edit is kept in {path}")
    else:
        path.unlink(missing_ok=True)


def _edit(client: Client, d: DatasetView, base: int, path: Path, stored: str, comment: str) -> bool:
    """Edit until the server stores the file, nothing changed, or the user gives up (True:
    the file is kept)."""
    argv = _editor()
    while True:
        _run_editor(argv, path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FrazilError(f"cannot read {path}: {exc}") from None
        if text == stored:
            path.unlink(missing_ok=True)
            say(f"{_named(d)}: no change; nothing stored")
            return False
        try:
            done = client.edit_config(d.id, text, comment, base=base)
        except FIXABLE as exc:
            _problems(path, exc)
            if isinstance(exc, Rejected):
                now = client.dataset(d.id).dataset.config_version
                if now != base:  # another edit won: editing again cannot help
                    note(f"version {now} was stored meanwhile: see frazil config diff {d.id}")
                    return True
            if not _again():
                return True
            continue
        path.unlink(missing_ok=True)
        say(f"{_named(d)}: config version {done.version} stored; {done.checked.summary}")
        return False


# -- delete -------------------------------------------------------------------------------


def delete_cmd(
    dataset: DatasetArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why (kept in the audit trail).")
    ] = "",
) -> None:
    """Delete a dataset with its config versions, jobs, tasks, attempts, statistics, logs and
    file records (its owner or an administrator). The audit trail keeps the deletion."""
    if not yes and not sys.stdin.isatty():
        raise FrazilError("frazil delete asks for confirmation on a terminal: give --yes")
    with connect.client() as client:
        d = client.dataset(dataset).dataset
        if not yes:
            me = client.whoami()
            if me.role != "admin" and me.name != d.owner:
                raise FrazilError(
                    f"{_named(d)} belongs to {d.owner!r}: only its owner or an administrator "
                    "may delete it"
                )
            note(
                f"{_named(d)} of {d.owner or 'nobody'}: {d.status}, {d.jobs_complete} of "
                f"{d.jobs_submitted} jobs complete, config v{d.config_version}. Deleting it "
                "removes its configs, jobs, tasks, attempts, statistics, logs and file records."
            )
            answer = typer.prompt(
                "type its id or alias to delete it", default="", show_default=False, err=True
            ).strip()
            if answer not in {str(d.id), d.alias or str(d.id)}:
                raise FrazilError(f"not deleted: {answer!r} is not {_named(d)}'s id or alias")
        done = client.delete_dataset(d.id, reason)
    say(f"deleted {_named(d)}: {done.jobs} jobs, {done.tasks} tasks, {done.attempts} attempts")


def register(app: typer.Typer) -> None:
    """Add the ``config`` group and ``delete`` to the application."""
    group = typer.Typer(
        help="A dataset's stored config: show, edit, diff, versions.", no_args_is_help=True,
        rich_markup_mode=None,
    )  # fmt: skip
    group.command("show")(show_cmd)
    group.command("edit")(edit_cmd)
    group.command("diff")(diff_cmd)
    group.command("versions")(versions_cmd)
    app.add_typer(group, name="config")
    app.command("delete")(delete_cmd)


__all__ = ["register", "yaml_text"]
