"""The ``frazil`` command line: its commands, and errors as one line and a non-zero exit.

Ctrl-C is ``frazil.cli.entry``'s (exit 130, one line). Modules that need the web stack, the
database or the config model are imported by the commands that use them, so that
``frazil --help`` and a remote ``frazil status`` start fast (``benchmarks/cli_start.py``).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="frazil",
    help="Frazil: a lightweight distributed production system for scientific datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich's Markdown alone would double the start-up time
)
show = typer.Typer(
    help="Show a config's job, or a task.", no_args_is_help=True, rich_markup_mode=None
)


#: Commands that run until stopped: they log each event by default, and detail with -v.
DAEMONS = ("server", "site")


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Log what happens (server, site: in detail)."
    ),
    server: str | None = typer.Option(
        None,
        "--server",
        "-S",
        help="A server you logged in to (frazil login URL --name NAME).",
        metavar="NAME",
    ),
) -> None:
    """Frazil: a lightweight distributed production system for scientific datasets.

    Commands speak to the server you logged in to (frazil login), to FRAZIL_URL with
    FRAZIL_TOKEN, or else to the database of this machine ($FRAZIL_HOME).
    """
    import logging  # noqa: PLC0415

    from frazil import logs  # noqa: PLC0415
    from frazil.cli import connect  # noqa: PLC0415

    if ctx.invoked_subcommand in DAEMONS:
        logs.configure(logging.DEBUG if verbose else logging.INFO)
    else:
        logs.configure(logging.INFO if verbose else logging.WARNING)
    connect.choose(server)


def _register() -> None:
    from frazil.cli import (  # noqa: PLC0415
        account_commands,
        config_commands,
        dataset_commands,
        operator_commands,
        people_commands,
        server_commands,
        stored_config_commands,
        task_commands,
        unmonitored,
    )

    app.add_typer(show, name="show")
    dataset_commands.register(app, show)
    task_commands.register(app, show)
    config_commands.register(app, show)
    account_commands.register(app)
    server_commands.register(app)
    server_commands.register_runners(app)
    app.command("run")(unmonitored.run)
    operator_commands.register(app)
    stored_config_commands.register(app)
    people_commands.register(app)


def _fail(text: str) -> int:
    from frazil.cli.text import console, shown  # noqa: PLC0415

    console(stderr=True).print(f"[red]error[/red] {shown(text)}")
    return 1


def _invoke(argv: list[str] | None) -> int:
    """Run one command line; its exit status."""
    from frazil.errors import ConfigError, FrazilError  # noqa: PLC0415

    _register()
    try:
        result = app(args=argv, standalone_mode=False)
    except ConfigError as exc:
        for p in exc.problems:
            where = f"{exc.source}:{p.line}" if exc.source and p.line else (exc.source or "")
            _fail(f"{where}{': ' if where else ''}{p}")
        return 1
    except FrazilError as exc:
        return _fail(str(exc))
    except typer.Abort:
        return _fail("aborted")
    except Exception as exc:
        show_usage = getattr(exc, "show", None)  # the command line's own usage errors
        if callable(show_usage) and hasattr(exc, "exit_code"):
            show_usage()
            return int(exc.exit_code)
        raise
    return result if isinstance(result, int) else 0


def run(argv: list[str] | None = None) -> int:
    """Run one command line; its exit status (``frazil.cli.entry`` is the program)."""
    return _invoke(argv)
