"""Evaluating ``$`` expressions against a job's context.

Keywords::

    $steering(name)          a steering parameter
    $system(name)            a system value (the site's value overrides the config's)
    $args(name)              a job option: dataset, job, jobs_submitted, task, iter, seed, ...
    $options(name)           the same as $args
    $environ(name)           an environment variable of the process that evaluates
    $metadata(name)          dataset metadata: description, owner, ...
    $(name)                  the innermost of: module, tray, task, steering parameters, options
    $eval(expr)              arithmetic and logic in the ``calc`` sandbox
    $sprintf("fmt", a, ...)  C-style formatting
    $choice(a, b, ...)       a reproducible random pick for this job
    $sum/$min/$max/$len(...) reductions over a list or over the arguments
    ...[key]                 index the value of any of the above

Evaluation is recursive: a value that holds expressions is evaluated in the same context,
so a module's parameter may refer to the tray's, and a steering parameter to another one.
A reference back to a value that is being evaluated is an ``ExpressionCycleError`` naming
the chain; recursion, steps and sizes are bounded (``ExpressionLimitError``).

A string that is exactly one expression keeps its value's type (``"$args(job)"`` is an int);
anything else is text, with lists and dicts rendered as JSON. Strings without ``$`` are
returned untouched (their backslashes too).

Strict mode (the default) raises ``UnresolvedReference`` for a name that no scope defines;
lenient mode leaves the expression's text in place instead.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from frazil.errors import (
    ExpressionCycleError,
    ExpressionError,
    ExpressionLimitError,
    UnresolvedReference,
)
from frazil.model.expressions.calc import ITEMS_PER_STEP, calculate, to_text
from frazil.model.expressions.sprintf import sprintf
from frazil.model.expressions.syntax import Call, Index, Node, Template, Text, parse

LOOKUPS = ("steering", "system", "args", "options", "environ", "metadata")
FUNCTIONS = ("eval", "sprintf", "choice", "sum", "min", "max", "len")
KEYWORDS = frozenset(LOOKUPS + FUNCTIONS)

_INT = re.compile(r"[+-]?\d{1,1000}")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)")


@dataclass(frozen=True)
class Context:
    """Everything an expression can see. Scopes are ``(label, parameters)``, innermost first."""

    steering: Mapping[str, Any] = field(default_factory=dict)
    system: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    scopes: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    seed: int = 0
    strict: bool = True
    #: Missing ``$system``/``$environ`` values become placeholders instead of errors
    #: (validation uses this: a site supplies those values only at run time).
    defer_site_values: bool = False
    max_depth: int = 32
    max_steps: int = 200_000
    max_size: int = 1_000_000


#: Job options that differ between the levels of one job.
LEVEL_OPTIONS = frozenset(
    {"task", "task_index", "tray", "tray_index", "iter", "module", "module_index"}
)


def _same_at_every_level(label: str) -> bool:
    """Labels that name one value for the whole job (``module.x`` names one per module)."""
    if label.startswith(("steering(", "system(")):
        return True
    return label.startswith("args(") and label[5:-1] not in LEVEL_OPTIONS


@lru_cache(maxsize=8192)
def _parsed(text: str) -> Template:
    return parse(text)


def literal(text: str) -> Any:
    """The typed value of a bare word: an int, a float, a bool, or the text itself."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    return text


def _number_or_same(value: Any) -> Any:
    """Numeric strings become numbers (values that went through text arrive as strings)."""
    if isinstance(value, str):
        number = literal(value.strip())
        if isinstance(number, int | float) and not isinstance(number, bool):
            return number
    return value


def _escape_for_quote(text: str, quote: str) -> str:
    return text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


class Evaluator:
    """Evaluates values in one context, remembering each parameter it has resolved."""

    def __init__(
        self,
        context: Context,
        budget: list[int] | None = None,
        limit: int | None = None,
        shared: dict[str, tuple[Any, tuple[str, ...]]] | None = None,
    ) -> None:
        """``budget`` (``[steps left]`` of ``limit``) may be shared by several evaluators: a
        resolver gives one to every evaluator of a job, so that the whole job is bounded.

        ``shared`` remembers, across the evaluators of one job (one per task, tray and
        module), the steering, system and job values whose evaluation read nothing of the
        level it ran at (no ``$(name)``, no ``$args(task)``, ``$args(iter)``, ...): they are
        the same at every level, and are evaluated once per job."""
        self.context = context
        self.deferred: list[str] = []  # site values that were stood in for
        #: label -> (value, whether it read the level, the site values it stood in for)
        self._memo: dict[str, tuple[Any, bool, tuple[str, ...]]] = {}
        self._shared = shared
        self._level_reads = 0  # reads of what differs between levels, so far
        self._active: list[str] = []
        self._texts: list[str] = []
        self._budget = [context.max_steps] if budget is None else budget
        self._limit = limit or (context.max_steps if budget is None else budget[0])

    # -- values -----------------------------------------------------------------------------

    def evaluate(self, value: Any) -> Any:
        """Evaluate every string in a JSON-like value (lists and dicts are walked)."""
        if isinstance(value, str):
            if "$" not in value:
                return value
            template = _parsed(value)
            self._texts.append(value)
            try:
                return self._template(template, top=True)
            finally:
                self._texts.pop()
        if isinstance(value, list | tuple):
            self._walk(len(value))
            return [self.evaluate(v) for v in value]
        if isinstance(value, Mapping):
            self._walk(len(value))
            return {to_text(self.evaluate(k)): self.evaluate(v) for k, v in value.items()}
        return value

    def _walk(self, items: int) -> None:
        """A step per item of a list or mapping walked (each is a Python call)."""
        self._budget[0] -= items
        if self._budget[0] < 0:
            text = self._texts[-1] if self._texts else ""
            raise ExpressionLimitError(f"evaluation took more than {self._limit} steps", text)

    def text(self, value: Any) -> str:
        """Evaluate and render as text."""
        return to_text(self.evaluate(value))

    # -- templates --------------------------------------------------------------------------

    def _error(self, cls: type[ExpressionError], message: str, node: Node) -> ExpressionError:
        text = self._texts[-1] if self._texts else ""
        return cls(message, text, node.pos)

    def _step(self, node: Node, steps: int = 1) -> None:
        self._budget[0] -= steps
        if self._budget[0] < 0:
            raise self._error(
                ExpressionLimitError, f"evaluation took more than {self._limit} steps", node
            )

    def _work(self, node: Node, items: int) -> None:
        """Charge Python's work on ``items`` items (rendering, reducing) to the budget."""
        if items >= ITEMS_PER_STEP:
            self._step(node, items // ITEMS_PER_STEP)

    def _template(self, template: Template, *, top: bool) -> Any:
        single = template.single
        if single is not None:
            return self._node(single, top=top)
        pieces: list[str] = []
        size = 0
        for part in template.parts:
            piece = part.value if isinstance(part, Text) else to_text(self._node(part, top=top))
            if len(piece) >= ITEMS_PER_STEP:
                self._work(part, len(piece))
            size += len(piece)
            if size > self.context.max_size:
                raise self._error(
                    ExpressionLimitError,
                    f"text longer than {self.context.max_size} characters",
                    part,
                )
            pieces.append(piece)
        return "".join(pieces)

    def _node(self, node: Node, *, top: bool) -> Any:
        self._step(node)
        if isinstance(node, Text):
            return node.value
        try:
            if isinstance(node, Index):
                return self._index(node)
            return self._call(node)
        except UnresolvedReference:
            if top and not self.context.strict:
                return node.source
            raise

    def _key(self, template: Template) -> str:
        """A name or key: evaluated as text, stripped, unquoted."""
        key = to_text(self._template(template, top=False)).strip()
        if len(key) >= 2 and key[0] in "\"'" and key[-1] == key[0]:
            key = key[1:-1]
        return key

    def _args(self, node: Call) -> list[Any]:
        """The arguments of a multi-argument function, each with its type."""
        if len(node.args) == 1 and not node.args[0].parts:
            return []
        values = []
        for arg in node.args:
            parts = [
                p
                for p in arg.parts
                if not (isinstance(p, Text) and not p.quote and not p.value.strip())
            ]
            if len(parts) == 1 and not isinstance(parts[0], Text):
                values.append(self._node(parts[0], top=False))
                continue
            text = to_text(self._template(arg, top=False)).strip()
            self._work(node, len(text))
            first = parts[0] if parts else None
            if (
                isinstance(first, Text)
                and first.quote
                and len(text) >= 2
                and text[0] == first.quote
                and text[-1] == text[0]
            ):
                values.append(text[1:-1])
            else:
                values.append(literal(text))
        return values

    # -- calls ------------------------------------------------------------------------------

    def _call(self, node: Call) -> Any:
        name = node.name
        if name == "":
            return self._scoped(self._key(node.body), node)
        if name in LOOKUPS:
            return self._lookup(name, self._key(node.body), node)
        if name == "eval":
            return self._eval(node)
        if name == "sprintf":
            args = self._args(node)
            if not args:
                raise self._error(ExpressionError, "$sprintf() needs a format", node)
            try:
                text = sprintf(to_text(args[0]), args[1:])
            except ExpressionError as exc:
                raise self._error(type(exc), exc.message, node) from exc
            self._work(node, len(text))
            return text
        if name == "choice":
            return self._choice(node)
        if name in ("sum", "min", "max", "len"):
            return self._reduce(name, node)
        raise self._error(
            UnresolvedReference,
            f"unknown function ${name}() (known: {', '.join(sorted(KEYWORDS))})",
            node,
        )

    def _lookup(self, kind: str, key: str, node: Call) -> Any:
        ctx = self.context
        table: Mapping[str, Any] = {
            "steering": ctx.steering,
            "system": ctx.system,
            "args": ctx.options,
            "options": ctx.options,
            "environ": ctx.environ,
            "metadata": ctx.metadata,
        }[kind]
        if key not in table:
            if kind in ("system", "environ") and ctx.defer_site_values:
                self.deferred.append(f"${kind}({key})")
                return f"${kind}({key})"
            known = ", ".join(sorted(table)) or "none"
            raise self._error(
                UnresolvedReference, f"no {kind} value {key!r} (known: {known})", node
            )
        if kind in ("environ", "metadata"):
            return table[key]  # literal values: never evaluated again
        label = "args" if kind == "options" else kind
        if label == "args" and key in LEVEL_OPTIONS:
            self._level_reads += 1
        return self._resolve(f"{label}({key})", table[key], node)

    def _scoped(self, key: str, node: Call) -> Any:
        ctx = self.context
        self._level_reads += 1  # the innermost scope that has the name wins: it is the level's
        for label, params in ctx.scopes:
            if key in params:
                return self._resolve(f"{label}.{key}", params[key], node)
        if key in ctx.steering:
            return self._resolve(f"steering({key})", ctx.steering[key], node)
        if key in ctx.options:
            return self._resolve(f"args({key})", ctx.options[key], node)
        where = [label for label, _ in ctx.scopes] + ["steering", "options"]
        raise self._error(UnresolvedReference, f"no parameter {key!r} in {', '.join(where)}", node)

    def _resolve(self, label: str, raw: Any, node: Node) -> Any:
        known = self._memo.get(label)
        if known is not None:
            value, level, deferred = known
            self._level_reads += level
            self.deferred.extend(deferred)  # what it stood in for still stands in the answer
            return value
        if self._shared is not None and label in self._shared:
            value, deferred = self._shared[label]
            self.deferred.extend(deferred)
            return value
        if label in self._active:
            chain = [*self._active[self._active.index(label) :], label]
            raise self._error(ExpressionCycleError, "reference cycle: " + " -> ".join(chain), node)
        if len(self._active) >= self.context.max_depth:
            raise self._error(
                ExpressionLimitError,
                f"references nested deeper than {self.context.max_depth} levels "
                f"({' -> '.join(self._active[-3:])} -> ...)",
                node,
            )
        self._active.append(label)
        reads, stood_in = self._level_reads, len(self.deferred)
        try:
            value = self.evaluate(raw)
        except ExpressionError as exc:
            if not isinstance(exc, ExpressionCycleError):
                exc.add_via(label)
            raise
        finally:
            self._active.pop()
        level = self._level_reads != reads
        deferred = tuple(self.deferred[stood_in:])
        self._memo[label] = (value, level, deferred)
        if self._shared is not None and not level and _same_at_every_level(label):
            self._shared[label] = (value, deferred)
        return value

    def _eval(self, node: Call) -> Any:
        variables: dict[str, Any] = {}
        source: list[str] = []
        for part in node.body.parts:
            if isinstance(part, Text):
                source.append(part.value)
                continue
            value = self._node(part, top=False)
            if part.quote:
                source.append(_escape_for_quote(to_text(value), part.quote))
            else:
                name = f"_v{len(variables)}"
                variables[name] = _number_or_same(value)
                source.append(f" {name} ")
        try:
            return calculate("".join(source), variables, self._budget)
        except ExpressionError as exc:
            message = exc.message
            if self._budget[0] < 0:  # the budget may be the job's, larger than one $eval's
                message = f"evaluation took more than {self._limit} steps"
            raise self._error(type(exc), message, node) from exc

    def _choice(self, node: Call) -> Any:
        args = self._args(node)
        options: Sequence[Any] = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        if not options:
            raise self._error(ExpressionError, "$choice() needs something to choose from", node)
        # Keyed by the call's own text: the same choice gives the same answer for a job
        # wherever and in whatever order it is evaluated.
        rng = random.Random(f"{self.context.seed}:{node.source}")  # noqa: S311 - not crypto
        return options[rng.randrange(len(options))]

    def _reduce(self, name: str, node: Call) -> Any:
        args = self._args(node)
        if len(args) == 1 and isinstance(args[0], list):
            items: list[Any] = args[0]
        elif name == "len" and len(args) == 1 and isinstance(args[0], str):
            return len(args[0])
        else:
            items = args
        if name == "len":
            return len(items)
        self._step(node, len(items))  # a Python loop over the items, then min/max/sum
        items = [_number_or_same(i) for i in items]
        if not items and name != "sum":
            raise self._error(ExpressionError, f"${name}() of nothing", node)
        try:
            if name == "sum":
                if not all(isinstance(i, int | float) for i in items):
                    raise TypeError("$sum() needs numbers")
                return sum(items)
            return min(items) if name == "min" else max(items)
        except TypeError as exc:
            raise self._error(ExpressionError, f"${name}(): {exc}", node) from exc

    def _index(self, node: Index) -> Any:
        target = self._node(node.target, top=False)
        single = node.key.single
        key: Any = self._node(single, top=False) if single is not None else self._key(node.key)
        if isinstance(target, list | str):
            if isinstance(key, str):
                key = literal(key)
            if isinstance(key, bool) or not isinstance(key, int):
                raise self._error(
                    ExpressionError, f"a list index must be an integer, got {key!r}", node
                )
            if not -len(target) <= key < len(target):
                raise self._error(
                    ExpressionError,
                    f"index {key} out of range for a {type(target).__name__} of {len(target)}",
                    node,
                )
            return target[key]
        if isinstance(target, Mapping):
            name = to_text(key)
            if name not in target:
                known = ", ".join(sorted(map(str, target))) or "none"
                raise self._error(UnresolvedReference, f"no key {name!r} (known: {known})", node)
            return target[name]
        raise self._error(
            ExpressionError, f"cannot index a {type(target).__name__} ({target!r})", node
        )


def evaluate(value: Any, context: Context | None = None) -> Any:
    """Evaluate every expression in ``value`` in ``context`` (an empty one by default)."""
    return Evaluator(context or Context()).evaluate(value)
