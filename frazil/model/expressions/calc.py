"""The ``$eval`` sandbox: a small interpreter over a whitelisted Python expression syntax tree.

The text is parsed with ``ast.parse(mode="eval")`` and walked here; nothing is compiled or
executed by Python. Allowed: numbers, strings, ``True``/``False``/``None`` (and ``true``,
``false``, ``null``), list and tuple literals, ``+ - * / // % **``, unary ``- + not``,
comparisons (``== != < <= > >= in``, ``not in``), ``and``/``or``, ``x if c else y``, and the
functions ``min max abs round int float str len``. Names are only the variables passed in.

Everything else (attributes, subscripts, lambdas, comprehensions, keyword arguments, other
functions, bit operators, ``%`` on strings) is rejected before anything is evaluated.

No input can hang or exhaust memory, and no single operation can hold the interpreter for
long: integers are bounded to ``MAX_INT_BITS`` and exponents are checked before they are
computed; every value is bounded to ``MAX_SIZE`` items in total, nested items counted (a
string counts its characters), and ``*`` and ``+`` are refused before they build anything
larger; and the work that Python does in one operation on whole values (comparing,
``in``, concatenating, repeating, ``str``, ``min``/``max``) is charged to the step budget,
one step per ``ITEMS_PER_STEP`` items, so that ``[[[1]*n]*n]*n == [[[1]*n]*n]*n`` is refused
instead of making n³ comparisons.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from frazil.errors import ExpressionError, ExpressionLimitError, ExpressionSyntaxError

MAX_SOURCE = 10_000
MAX_INT_BITS = 4096
#: Items in one value, nested items counted: a list counts 1 plus the sizes of its items,
#: a string its characters, anything else 1.
MAX_SIZE = 100_000
#: Items that one ``$eval`` may build in all (the top-level items of every list and string
#: that ``*``, ``+``, ``str`` and list literals make): bounds its memory.
MAX_BUILT = 10 * MAX_SIZE
MAX_DEPTH = 100
MAX_NDIGITS = 100
#: Items that Python handles in one step's worth of time when it compares, copies or
#: renders whole values (about a microsecond).
ITEMS_PER_STEP = 32

Value = Any

_CONSTANT_NAMES: Mapping[str, Value] = {"true": True, "false": False, "null": None}

_DISALLOWED = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generators",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.Starred: "starred arguments",
    ast.NamedExpr: "assignment expressions",
    ast.JoinedStr: "f-strings",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


def _check_int(value: int) -> int:
    if value.bit_length() > MAX_INT_BITS:
        raise ExpressionLimitError(f"integer result larger than {MAX_INT_BITS} bits")
    return value


def _too_big(size: int) -> ExpressionLimitError:
    return ExpressionLimitError(
        f"value longer than {MAX_SIZE} items, nested items counted ({size} or more)"
    )


class _Sizes:
    """Sizes of values, nested items counted, remembered per container.

    A list that holds the same inner list N times is measured once for the inner list and
    N times a lookup. Measuring stops as soon as a value is larger than ``MAX_SIZE``.
    """

    def __init__(self) -> None:
        #: id -> (the container, kept alive so that its id stays its own; its size)
        self._known: dict[int, tuple[object, int]] = {}
        #: items looked at, for the step budget (the walk is Python work too)
        self.walked = 0

    def of(self, value: Value) -> int:
        if isinstance(value, str):
            return max(len(value), 1)
        if not isinstance(value, list | tuple | dict):
            return 1
        known = self._known.get(id(value))
        if known is not None:
            return known[1]
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        self.walked += len(items)
        total = 1
        for item in items:
            total += self.of(item)
            if total > MAX_SIZE:
                raise _too_big(total)
        self._known[id(value)] = (value, total)
        return total

    def made(self, value: Value, size: int) -> Value:
        """Record the size of a value built from measured parts (refused if too large)."""
        if size > MAX_SIZE:
            raise _too_big(size)
        if isinstance(value, list):
            self._known[id(value)] = (value, size)
        return value


def _is_number(v: Value) -> bool:
    return isinstance(v, int | float)


def _require_numbers(op: str, *values: Value) -> None:
    for v in values:
        if not _is_number(v):
            raise ExpressionError(f"'{op}' needs numbers, got {type(v).__name__} {v!r}")


def _int_product(a: Value, b: Value) -> Value:
    _require_numbers("*", a, b)
    if (
        isinstance(a, int)
        and isinstance(b, int)
        and a.bit_length() + b.bit_length() > (MAX_INT_BITS + 1)
    ):
        raise ExpressionLimitError(f"integer result larger than {MAX_INT_BITS} bits")
    return a * b


def _pow(a: Value, b: Value) -> Value:
    _require_numbers("**", a, b)
    # bits of a**b is about b * log2|a|: refuse before computing
    big = isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1
    if big and b * math.log2(abs(a)) > MAX_INT_BITS:
        raise ExpressionLimitError(f"integer result larger than {MAX_INT_BITS} bits")
    result = a**b
    if isinstance(result, complex):
        raise ExpressionError(f"{a!r} ** {b!r} has no real value")
    return result


def _numeric(op: str, fn: Callable[[Any, Any], Any]) -> Callable[[Value, Value], Value]:
    def apply(a: Value, b: Value) -> Value:
        _require_numbers(op, a, b)
        return fn(a, b)

    return apply


_BINARY: Mapping[type[ast.operator], tuple[str, Callable[[Value, Value], Value]]] = {
    ast.Add: ("+", _numeric("+", operator.add)),  # strings and lists: _Interpreter._add
    ast.Sub: ("-", _numeric("-", operator.sub)),
    ast.Mult: ("*", _int_product),  # strings and lists: _Interpreter._repeat
    ast.Div: ("/", _numeric("/", operator.truediv)),
    ast.FloorDiv: ("//", _numeric("//", operator.floordiv)),
    ast.Mod: ("%", _numeric("%", operator.mod)),
    ast.Pow: ("**", _pow),
}

_COMPARE: Mapping[type[ast.cmpop], Callable[[Value, Value], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _fn_minmax(name: str, fn: Callable[..., Value]) -> Callable[..., Value]:
    def apply(*args: Value) -> Value:
        items = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
        if not items:
            raise ExpressionError(f"{name}() of nothing")
        return fn(items)

    return apply


def _fn_round(x: Value, ndigits: Value = None) -> Value:
    _require_numbers("round", x)
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int) or isinstance(ndigits, bool) or abs(ndigits) > MAX_NDIGITS:
        raise ExpressionError(f"round() digits must be an integer within ±{MAX_NDIGITS}")
    return round(x, ndigits)


def _fn_int(x: Value) -> Value:
    if isinstance(x, str):
        if len(x) > 1000:
            raise ExpressionLimitError("int() of a string longer than 1000 characters")
        try:
            return int(x.strip())
        except ValueError:
            return int(float(x))
    if not isinstance(x, int | float):
        raise ExpressionError(f"int() needs a number or a numeric string, got {x!r}")
    return int(x)


def _fn_float(x: Value) -> Value:
    if isinstance(x, str) and len(x) > 1000:
        raise ExpressionLimitError("float() of a string longer than 1000 characters")
    if not isinstance(x, int | float | str):
        raise ExpressionError(f"float() needs a number or a numeric string, got {x!r}")
    return float(x)


def _fn_str(x: Value) -> Value:
    return to_text(x)


def _fn_len(x: Value) -> Value:
    if not isinstance(x, str | list):
        raise ExpressionError(f"len() needs a string or a list, got {type(x).__name__}")
    return len(x)


def _fn_abs(x: Value) -> Value:
    _require_numbers("abs", x)
    return abs(x)


FUNCTIONS: Mapping[str, Callable[..., Value]] = {
    "min": _fn_minmax("min", min),
    "max": _fn_minmax("max", max),
    "abs": _fn_abs,
    "round": _fn_round,
    "int": _fn_int,
    "float": _fn_float,
    "str": _fn_str,
    "len": _fn_len,
}


def to_text(value: Value) -> str:
    """How a value reads when it is put into text: JSON for lists and dicts, else ``str``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, sort_keys=False, default=str)
    return str(value)


class _Interpreter:
    def __init__(self, variables: Mapping[str, Value], budget: list[int]) -> None:
        self.variables = variables
        self.budget = budget  # [steps left], shared with the template evaluator
        self.depth = 0
        self.sizes = _Sizes()
        self.built = 0

    def build(self, items: int) -> None:
        """Count items about to be built; refuse past ``MAX_BUILT`` in all."""
        self.built += items
        if self.built > MAX_BUILT:
            raise ExpressionLimitError(f"expression builds more than {MAX_BUILT} items in all")

    def spend(self, steps: int) -> None:
        """Take ``steps`` from the budget; past its end the expression is refused."""
        self.budget[0] -= steps
        if self.budget[0] < 0:
            raise ExpressionLimitError("expression took too many evaluation steps")

    def work(self, items: int) -> None:
        """Charge work that Python does on ``items`` items inside one operation."""
        self.spend(items // ITEMS_PER_STEP)

    def run(self, node: ast.AST) -> Value:
        self.spend(1)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionLimitError(f"$eval nested deeper than {MAX_DEPTH} levels")
        try:
            return self.checked(self.visit(node))
        finally:
            self.depth -= 1

    def checked(self, value: Value) -> Value:
        """``value``, if it is within the bounds on integers and sizes."""
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return _check_int(value)
        walked = self.sizes.walked
        self.sizes.of(value)  # raises past MAX_SIZE
        self.work(self.sizes.walked - walked)
        return value

    def add(self, a: Value, b: Value) -> Value:
        both = (a, b)
        if all(isinstance(v, str) for v in both) or all(isinstance(v, list) for v in both):
            size = self.sizes.of(a) + self.sizes.of(b) - isinstance(a, list)
            if size > MAX_SIZE:
                raise _too_big(size)
            self.work(len(a) + len(b))
            self.build(len(a) + len(b))
            return self.sizes.made(a + b, size)
        _require_numbers("+", a, b)
        return a + b

    def repeat(self, a: Value, b: Value) -> Value:
        for seq, times in ((a, b), (b, a)):
            if (
                isinstance(seq, str | list)
                and isinstance(times, int)
                and not isinstance(times, bool)
            ):
                count = max(times, 0)
                if isinstance(seq, str):
                    size = len(seq) * count
                else:  # count copies of the items, in one list
                    size = 1 + (self.sizes.of(seq) - 1) * count
                if size > MAX_SIZE:
                    raise _too_big(size)
                self.work(len(seq) * count)
                self.build(len(seq) * count)
                return self.sizes.made(seq * count, size)
        return _int_product(a, b)

    def compare(self, op: ast.cmpop, left: Value, right: Value) -> bool:
        compare = _COMPARE.get(type(op))
        if compare is None:
            raise ExpressionSyntaxError(f"comparison {type(op).__name__} is not allowed in $eval")
        if isinstance(op, ast.In | ast.NotIn):
            if not isinstance(right, str | list):
                raise ExpressionError(f"'in' needs a string or a list on its right, got {right!r}")
            # each item of the right side is compared with the left one at most
            self.work(self.sizes.of(left) + self.sizes.of(right))
        else:  # item by item until one side runs out
            self.work(min(self.sizes.of(left), self.sizes.of(right)))
        return compare(left, right)

    def call(self, name: str, args: list[Value]) -> Value:
        if name in ("min", "max", "str"):  # compare or render every item
            items = sum(self.sizes.of(a) for a in args)
            self.work(items)
            if name == "str":
                self.build(items)
        return FUNCTIONS[name](*args)

    def visit(self, node: ast.AST) -> Value:
        if isinstance(node, ast.Expression):
            return self.run(node.body)
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, bool | int | float | str):
                return node.value
            raise ExpressionSyntaxError(f"constant {node.value!r} is not allowed in $eval")
        if isinstance(node, ast.Name):
            if node.id in self.variables:
                return self.variables[node.id]
            if node.id in _CONSTANT_NAMES:
                return _CONSTANT_NAMES[node.id]
            if node.id in FUNCTIONS:
                raise ExpressionSyntaxError(f"function {node.id!r} must be called")
            raise ExpressionError(
                f"unknown name {node.id!r} in $eval (use $steering(), $args() or $(name) "
                "to bring values in)"
            )
        if isinstance(node, ast.UnaryOp):
            value = self.run(node.operand)
            if isinstance(node.op, ast.Not):
                return not value
            if isinstance(node.op, ast.USub):
                _require_numbers("-", value)
                return -value
            if isinstance(node.op, ast.UAdd):
                _require_numbers("+", value)
                return +value
            raise ExpressionSyntaxError("the '~' operator is not allowed in $eval")
        if isinstance(node, ast.BinOp):
            entry = _BINARY.get(type(node.op))
            if entry is None:
                raise ExpressionSyntaxError(
                    f"operator {type(node.op).__name__} is not allowed in $eval"
                )
            _, fn = entry
            left = self.run(node.left)
            right = self.run(node.right)
            if isinstance(node.op, ast.Add):
                return self.add(left, right)
            if isinstance(node.op, ast.Mult):
                return self.repeat(left, right)
            return fn(left, right)
        if isinstance(node, ast.BoolOp):
            result: Value = None
            for operand in node.values:
                result = self.run(operand)
                if isinstance(node.op, ast.And) and not result:
                    return result
                if isinstance(node.op, ast.Or) and result:
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = self.run(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.run(comparator)
                if not self.compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.run(node.body) if self.run(node.test) else self.run(node.orelse)
        if isinstance(node, ast.List | ast.Tuple):
            self.build(len(node.elts))
            items, size = [], 1
            for element in node.elts:  # refused as soon as the items grow too large
                items.append(self.run(element))
                size += self.sizes.of(items[-1])
                if size > MAX_SIZE:
                    raise _too_big(size)
            return self.sizes.made(items, size)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                allowed = ", ".join(sorted(FUNCTIONS))
                raise ExpressionSyntaxError(f"only these functions may be called: {allowed}")
            if node.keywords:
                raise ExpressionSyntaxError("keyword arguments are not allowed in $eval")
            return self.call(node.func.id, [self.run(a) for a in node.args])
        what = _DISALLOWED.get(type(node), type(node).__name__)
        raise ExpressionSyntaxError(f"{what} not allowed in $eval")


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.Expression:
    """The syntax tree of ``text`` (the interpreter never changes a tree: they are shared)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "invalid decimal literal" and the like
        return ast.parse(text, mode="eval")


def calculate(source: str, variables: Mapping[str, Value], budget: list[int]) -> Value:
    """Evaluate ``source`` in the sandbox with ``variables`` as the only names.

    ``budget`` is a one-item list of steps left, decremented in place. Raises
    ``ExpressionError`` (or a subclass) for anything it will not or cannot evaluate.
    """
    text = source.strip()
    if not text:
        raise ExpressionSyntaxError("empty $eval()")
    if len(text) > MAX_SOURCE:
        raise ExpressionLimitError(f"$eval text longer than {MAX_SOURCE} characters")
    try:
        tree = _parse(text)
    except SyntaxError as exc:
        raise ExpressionSyntaxError(
            f"$eval syntax error: {exc.msg}", text, (exc.offset or 1) - 1
        ) from exc
    except (RecursionError, MemoryError) as exc:
        raise ExpressionLimitError("$eval text nested too deeply", text) from exc
    except ValueError as exc:  # e.g. NUL characters
        raise ExpressionSyntaxError(f"$eval cannot read its text: {exc}", text) from exc
    interpreter = _Interpreter(variables, budget)
    try:
        return interpreter.run(tree)
    except ExpressionError as exc:
        if not exc.text:
            exc.text = text
            exc.args = (exc._render(),)
        raise
    except ZeroDivisionError as exc:
        raise ExpressionError("division by zero", text) from exc
    except OverflowError as exc:
        raise ExpressionLimitError("number too large", text) from exc
    except RecursionError as exc:
        raise ExpressionLimitError("$eval nested too deeply", text) from exc
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"cannot evaluate: {exc}", text) from exc
