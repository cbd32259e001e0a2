"""Entry point of the ``frazil`` command."""

from __future__ import annotations

import typer

from frazil.cli import config_commands

app = typer.Typer(
    name="frazil",
    help="Frazil: a lightweight distributed production system for scientific datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_commands.register(app)


@app.callback()
def _root() -> None:
    """Frazil: a lightweight distributed production system for scientific datasets."""


def main() -> None:
    """Run the command line."""
    app()
