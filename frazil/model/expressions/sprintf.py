"""``$sprintf``: C-style formatting with bounded widths and no named fields.

Each ``%`` conversion is checked and applied to one argument at a time, so that a format
cannot ask for a gigabyte of padding or reach into a mapping. Numeric conversions accept
numeric strings (``$sprintf("%06d", "3")`` is ``000003``), because values that pass through
text arrive as strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from frazil.errors import ExpressionError, ExpressionLimitError
from frazil.model.expressions.calc import to_text

MAX_WIDTH = 256

_SPEC = re.compile(
    r"%(?P<flags>[-+ #0]*)(?P<width>\d+)?(?:\.(?P<precision>\d+))?[hlL]?(?P<conv>[a-zA-Z%])"
)
_INT_CONVERSIONS = set("diouxXc")
_FLOAT_CONVERSIONS = set("eEfFgG")
_ANY_CONVERSIONS = set("sra")


def _as_int(value: Any, spec: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                return int(float(text))
            except ValueError:
                pass
    raise ExpressionError(f"{spec} needs an integer, got {value!r}")


def _as_float(value: Any, spec: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ExpressionError(f"{spec} needs a number, got {value!r}")


def sprintf(fmt: str, args: Sequence[Any]) -> str:
    """Format ``args`` into ``fmt`` the way C's ``sprintf`` (and Python's ``%``) does."""
    out: list[str] = []
    pos = 0
    used = 0
    while True:
        at = fmt.find("%", pos)
        if at < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:at])
        m = _SPEC.match(fmt, at)
        if m is None:
            detail = (
                "named fields are not supported"
                if fmt.startswith("%(", at)
                else (
                    "'*' widths are not supported" if "*" in fmt[at : at + 8] else "bad conversion"
                )
            )
            raise ExpressionError(f"$sprintf: {detail} at column {at + 1} of {fmt!r}")
        spec = m.group(0)
        conv = m.group("conv")
        pos = m.end()
        if conv == "%":
            out.append("%")
            continue
        for part in ("width", "precision"):
            number = m.group(part)
            if number is not None and int(number) > MAX_WIDTH:
                raise ExpressionLimitError(f"$sprintf: {part} in {spec!r} is over {MAX_WIDTH}")
        if used >= len(args):
            raise ExpressionError(
                f"$sprintf: {fmt!r} needs more than the {len(args)} argument(s) given"
            )
        value = args[used]
        used += 1
        if conv in _INT_CONVERSIONS:
            if conv == "c" and isinstance(value, str) and len(value) == 1:
                out.append(spec % value)
                continue
            number = _as_int(value, spec)
            if conv == "c" and not 0 <= number <= 0x10FFFF:
                raise ExpressionError(f"$sprintf: {spec} needs a character code, got {number}")
            out.append(spec % number)
        elif conv in _FLOAT_CONVERSIONS:
            out.append(spec % _as_float(value, spec))
        elif conv in _ANY_CONVERSIONS:
            out.append(spec % (to_text(value) if conv == "s" else value,))
        else:
            raise ExpressionError(f"$sprintf: unknown conversion {spec!r} in {fmt!r}")
    if used != len(args):
        raise ExpressionError(
            f"$sprintf: {fmt!r} uses {used} argument(s) but {len(args)} were given"
        )
    return "".join(out)
