"""SQL functions that each backend spells its own way, compiled per dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class position(FunctionElement[int]):  # noqa: N801 - named like the SQL function
    """``position(haystack, needle)``: where ``needle`` first occurs in ``haystack``, from 1,
    or 0. It compares exactly (case and all, in the column's binary collation), unlike
    ``LIKE``, which folds ASCII case on SQLite."""

    type = Integer()
    inherit_cache = True


@compiles(position)
def _instr(element: position, compiler: Any, **kw: Any) -> str:  # SQLite, MariaDB, MySQL
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(position, "postgresql")
def _strpos(element: position, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"
