"""Text from users, pilots and configs, made safe to print on a terminal.

A dataset description, an error a pilot reported, a host name or a statistic's name is
somebody else's text. Printed through rich as it is, ``[/]`` is markup that crashes the
command (for everyone who lists datasets) and ``ESC [ ...`` drives the terminal. Every such
value is printed through ``shown`` (control characters made visible, then markup escaped),
or ``plain`` where no markup is parsed (``Text`` objects, ``typer.echo``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from frazil.logs import visible

if TYPE_CHECKING:
    from rich.console import Console


def plain(value: object) -> str:
    """``value`` as text with its control characters but tabs and newlines written out
    (``\\x1b``; ``frazil.logs`` holds the rule)."""
    return visible(str(value))


def shown(value: object) -> str:
    """``value`` as text for rich markup: control characters written out, markup escaped."""
    from rich.markup import escape  # noqa: PLC0415 - Rich only where something is printed

    return escape(plain(value))


def console(*, stderr: bool = False) -> Console:
    """A console for the CLI: no highlighting and no ``:emoji:`` codes, so that text shows
    as it is."""
    from rich.console import Console  # noqa: PLC0415

    return Console(stderr=stderr, highlight=False, emoji=False, soft_wrap=stderr)
