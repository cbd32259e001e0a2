"""Commands that work on a dataset config without a server: validate, show, schema, expr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from frazil.errors import ExpressionError
from frazil.model.expressions import Context, Evaluator, to_text
from frazil.model.rng import job_seed

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _print_value(value: Any) -> None:
    if isinstance(value, str):
        typer.echo(value)
    else:
        typer.echo(json.dumps(value))


def expr(
    expression: Annotated[str, typer.Argument(help="The text to evaluate, e.g. '$args(job)'.")],
    job: Annotated[int, typer.Option(help="Job index.")] = 0,
    dataset: Annotated[int, typer.Option(help="Dataset id.")] = 0,
    seed: Annotated[int, typer.Option(help="Dataset RNG seed.")] = 0,
    lenient: Annotated[bool, typer.Option(help="Keep unresolved references as text.")] = False,
) -> None:
    """Print the value EXPRESSION takes for one job."""
    context = Context(
        options={"job": job, "dataset": dataset, "jobs_submitted": job + 1, "seed": seed},
        seed=job_seed(seed, job),
        strict=not lenient,
    )
    try:
        value = Evaluator(context).evaluate(expression)
    except ExpressionError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True)
        raise typer.Exit(1) from exc
    _print_value(value)
    _ = to_text


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command()(expr)
    _ = Path
