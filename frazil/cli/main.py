"""Entry point of the ``frazil`` command: errors become one line and a non-zero exit."""

from __future__ import annotations

import logging
import sys

import typer

from frazil import logs
from frazil.cli import config_commands, db_commands, server_commands, unmonitored
from frazil.cli.text import console, shown
from frazil.errors import ConfigError, FrazilError

app = typer.Typer(
    name="frazil",
    help="Frazil: a lightweight distributed production system for scientific datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
show = typer.Typer(help="Show a config's job, or a task.", no_args_is_help=True)
app.add_typer(show, name="show")
config_commands.register(app, show)
db_commands.register(app, show)
server_commands.register(app)
server_commands.register_runners(app)
app.command("run")(unmonitored.run)

err = console(stderr=True)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Frazil: a lightweight distributed production system for scientific datasets."""
    logs.configure(logging.INFO if verbose else logging.WARNING)


def main() -> None:
    """Run the command line."""
    try:
        app()
    except ConfigError as exc:
        for p in exc.problems:
            where = f"{exc.source}:{p.line}" if exc.source and p.line else (exc.source or "")
            err.print(f"[red]error[/red] {shown(where)}{': ' if where else ''}{shown(str(p))}")
        sys.exit(1)
    except FrazilError as exc:
        err.print(f"[red]error[/red] {shown(str(exc))}")
        sys.exit(1)
