"""Listings printed for whoever reads them: a terminal, a pipe, a script.

A ``Listing`` is columns of text. ``show`` prints it as

- ``table``: a Rich table, the default on a terminal; long cells wrap, and the columns that
  tell rows apart (ids, names, dates) are kept whole; a table that cannot be drawn in the
  terminal's width without cutting a name or a word is printed as ``plain`` instead;
- ``plain``: aligned text with nothing cut, the default when stdout is not a terminal;
- ``tsv``: tab-separated, a header line first (backslashes, tabs and newlines in values
  written ``\\\\``, ``\\t``, ``\\n``);
- ``json``: what the command's ``--json`` prints (the command's own data, not the listing).

``--columns a,b`` picks and orders columns. Every value is somebody's text: it is shown as
text (``[debug]`` stays ``[debug]``), with control characters written out.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from frazil.cli.text import console, plain
from frazil.errors import FrazilError

if TYPE_CHECKING:
    from frazil.wire import Page

T = TypeVar("T")


class Output(StrEnum):
    """How a listing is printed."""

    TABLE = "table"
    PLAIN = "plain"
    TSV = "tsv"
    JSON = "json"


OutputOpt = Annotated[
    Output | None,
    typer.Option(
        "--output", "-o", case_sensitive=False,
        help="table (terminal), plain (aligned text: the default in a pipe), tsv or json.",
    ),
]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the same as -o json).")]
ColumnsOpt = Annotated[
    str | None, typer.Option("--columns", "-c", help="Only these columns, in this order: a,b,c.")
]
LimitOpt = Annotated[int, typer.Option(help="At most this many rows.", min=1, max=10_000)]
OffsetOpt = Annotated[int, typer.Option(help="Skip this many rows.", min=0)]
AllOpt = Annotated[bool, typer.Option("--all", help="Every row, page after page.")]


@dataclass(frozen=True)
class Column:
    """A column: its header, whether it names a row (kept whole), whether it is a number
    (aligned right)."""

    name: str
    key: bool = False
    number: bool = False


@dataclass
class Listing:
    """Rows of text under named columns."""

    columns: list[Column]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""

    def add(self, *cells: object) -> None:
        """A row; ``None`` prints as nothing."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(["" if c is None else plain(c) for c in cells])

    def pick(self, names: str | None) -> Listing:
        """The listing with only the columns ``names`` (comma-separated), in that order."""
        if not names:
            return self
        have = [c.name for c in self.columns]
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in have]
        if unknown or not wanted:
            raise FrazilError(
                f"--columns: no column {', '.join(map(repr, unknown)) or 'given'}; "
                f"columns: {','.join(have)}"
            )
        index = [have.index(n) for n in wanted]
        return Listing(
            [self.columns[i] for i in index], [[r[i] for i in index] for r in self.rows], self.title
        )


def columns(*specs: str) -> list[Column]:
    """Columns from names, each marked ``name*`` (a key) or ``name#`` (a number)."""
    return [Column(s.rstrip("*#"), key=s.endswith("*"), number=s.endswith("#")) for s in specs]


def mode(output: Output | None, as_json: bool = False) -> Output:
    """The output asked for, else json for ``--json``, else by what stdout is."""
    if as_json:
        if output not in (None, Output.JSON):
            raise FrazilError(f"--json and --output {output.value} contradict each other")
        return Output.JSON
    if output is not None:
        return output
    return Output.TABLE if sys.stdout.isatty() else Output.PLAIN


def show(listing: Listing, output: Output, names: str | None = None) -> None:
    """Print ``listing`` (``output`` is not json: the command prints its data itself)."""
    listing = listing.pick(names)
    if output is Output.TSV:
        _tsv(listing)
    elif output is Output.TABLE:
        _table(listing)
    else:
        _plain(listing)


def _one_line(cell: str) -> str:
    return cell.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _escaped(cell: str) -> str:
    """A cell for tsv: backslashes too, so that a reader can undo it."""
    return _one_line(cell.replace("\\", "\\\\"))


def _tsv(listing: Listing) -> None:
    lines = ["\t".join(c.name for c in listing.columns)]
    lines += ["\t".join(_escaped(cell) for cell in row) for row in listing.rows]
    sys.stdout.write("\n".join(lines) + "\n")


def _plain(listing: Listing) -> None:
    header = [c.name for c in listing.columns]
    rows = [header] + [[_one_line(cell) for cell in row] for row in listing.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    if listing.title:
        lines.append(listing.title)
    for r in rows:
        cells = [
            cell.rjust(w) if col.number else cell.ljust(w)
            for cell, w, col in zip(r, widths, listing.columns, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    sys.stdout.write("\n".join(lines) + "\n")


#: the narrowest a column that is not a key gets in a terminal (longer words fold)
FOLD = 10


def _narrowest(listing: Listing, i: int) -> int:
    """The least width column ``i`` may have: a key's longest cell (whole), else its longest
    word up to ``FOLD`` (a longer word folds onto the next line: nothing is lost)."""
    cells = [listing.columns[i].name, *(r[i] for r in listing.rows)]
    if listing.columns[i].key:
        return max(len(c) for c in cells)
    return min(FOLD, max((len(w) for c in cells for w in c.split()), default=0))


def _table(listing: Listing) -> None:
    from rich.table import Table  # noqa: PLC0415 - Rich only for a terminal
    from rich.text import Text  # noqa: PLC0415

    out = console()
    narrowest = [_narrowest(listing, i) for i in range(len(listing.columns))]
    if sum(narrowest) + 3 * len(narrowest) + 1 > out.width:  # cells, padding and rules
        _plain(listing)  # too wide to draw without cutting: the terminal wraps its lines
        note("wider than the terminal: --columns picks columns, -o tsv suits other tools")
        return
    table = Table(title=listing.title or None, title_justify="left")
    for c, least in zip(listing.columns, narrowest, strict=True):
        table.add_column(
            c.name, justify="right" if c.number else "left", overflow="fold",
            min_width=least if c.key else None, no_wrap=c.key,
        )  # fmt: skip
    for row in listing.rows:
        table.add_row(*(Text(cell) for cell in row))
    out.print(table, crop=False)


def print_json(value: Any) -> None:
    """``value`` (dataclasses, lists, dicts, numbers, text) as indented JSON on stdout."""

    def data(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {k: data(x) for k, x in dataclasses.asdict(v).items()}
        if isinstance(v, list | tuple):
            return [data(x) for x in v]
        if isinstance(v, dict):
            return {k: data(x) for k, x in v.items()}
        return v

    sys.stdout.write(json.dumps(data(value), indent=2, default=str) + "\n")


def note(text: str) -> None:
    """A remark about the output (``100 of 2,000 ...``): on stderr, so that a pipe gets
    only the listing."""
    console(stderr=True).print(plain(text), markup=False, highlight=False)


def unit(statistic: str) -> str:
    """The unit of a statistic, from its name: ``*time`` and ``*_seconds`` in seconds,
    ``*memory`` in GB, ``*bytes`` in bytes; nothing for the others (a module's own)."""
    last = statistic.rsplit(".", 1)[-1].lower()
    if last.endswith(("time", "_seconds", "_s")):
        return "s"
    if last.endswith(("memory", "_gb")):
        return "GB"
    if last.endswith(("bytes", "size")):
        return "B"
    return ""


#: the most rows one request of a listing asks for (the server's cap)
PAGE_MAX = 10_000


def pages(
    fetch: Callable[[int, int], Page[T]], limit: int, offset: int, every: bool
) -> tuple[list[T], int]:
    """One page (``fetch(limit, offset)``), or with ``every`` all of them from ``offset`` on;
    and how many rows the whole listing has."""
    if not every:
        page = fetch(limit, offset)
        return page.items, page.total
    rows: list[T] = []
    while True:
        page = fetch(PAGE_MAX, offset + len(rows))
        rows += page.items
        if len(page.items) < PAGE_MAX:
            return rows, page.total


def print_rows(
    rows: list[T], how: Output, table: Callable[[list[T]], Listing], names: str | None = None
) -> None:
    """``rows`` as JSON, or as the listing ``table(rows)`` (only the columns ``names``)."""
    if how is Output.JSON:
        print_json(rows)
    else:
        show(table(rows), how, names)


def print_pages(
    fetch: Callable[[int, int], Page[T]],
    how: Output,
    table: Callable[[list[T]], Listing],
    *,
    limit: int,
    offset: int,
    every: bool,
    names: str | None = None,
) -> None:
    """A paged listing (``fetch(limit, offset)``, see ``pages``) printed by ``print_rows``,
    with a note on stderr when it stops short of its whole."""
    rows, total = pages(fetch, limit, offset, every)
    print_rows(rows, how, table, names)
    short(len(rows), offset, total, every)


def short(shown: int, offset: int, total: int, every: bool) -> None:
    """Say so (on stderr) when a listing stops short of its whole."""
    if not every and total > offset + shown:
        start = f" from row {offset:,}" if offset else ""
        note(f"{shown:,} of {total:,}{start}: use --limit, --offset or --all")


def say(text: str) -> None:
    """One line of somebody's text on stdout, as it is (control characters written out, no
    markup)."""
    typer.echo(plain(text))


def when(t: float | None) -> str:
    """A time as local date and time (``-`` for none)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def age(seconds: float) -> str:
    """A duration, roughly, in its largest unit: ``45s``, ``12m``, ``3h``, ``2d``."""
    for unit_seconds, name in ((86_400, "d"), (3_600, "h"), (60, "m")):
        if seconds >= unit_seconds:
            return f"{int(seconds // unit_seconds)}{name}"
    return f"{int(seconds)}s"


__all__: Sequence[str] = [
    "PAGE_MAX",
    "AllOpt",
    "Column",
    "ColumnsOpt",
    "JsonOpt",
    "LimitOpt",
    "Listing",
    "OffsetOpt",
    "Output",
    "OutputOpt",
    "age",
    "columns",
    "mode",
    "note",
    "pages",
    "print_json",
    "print_pages",
    "print_rows",
    "say",
    "short",
    "show",
    "unit",
    "when",
]  # fmt: skip
