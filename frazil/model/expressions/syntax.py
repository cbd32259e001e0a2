"""Tokenizer and parser for ``$`` expressions.

Grammar (informal)::

    template := ( text | "\\" char | call )*
    call     := "$" name? "(" body ")" index*        -- "$(x)" is the bare lookup
    body     := arg ( "," arg )*                      -- commas at depth 0, outside quotes
    arg      := ( text | "\\" char | call | quoted | "(" arg ")" | "[" arg "]" )*
    quoted   := '"' ( text | call )* '"'  |  "'" ( text | call )* "'"
    index    := "[" template-until-"]" "]"

A ``$`` that is not followed by a name and ``(`` is plain text, so shell variables such as
``$HOME`` pass through. A backslash makes the next character plain text (``\\$``, ``\\(``).
Quotes only matter inside a call's parentheses: they group text (commas and parentheses in
them do not count) and are kept, so that ``$eval`` sees Python string literals.
"""

from __future__ import annotations

from dataclasses import dataclass

from frazil.errors import ExpressionLimitError, ExpressionSyntaxError

#: Deepest nesting of calls and indexes the parser accepts.
MAX_NESTING = 64
#: Longest text the parser accepts.
MAX_TEXT = 100_000


@dataclass(frozen=True)
class Text:
    """Literal text. ``quote`` is the quote character it sits inside, or ``""``."""

    value: str
    pos: int
    quote: str = ""


@dataclass(frozen=True)
class Call:
    """``$name(body)``; ``name`` is ``""`` for the bare lookup ``$(name)``."""

    name: str
    body: Template
    args: tuple[Template, ...]
    source: str
    pos: int
    quote: str = ""


@dataclass(frozen=True)
class Index:
    """``target[key]`` where target is a call or another index."""

    target: Call | Index
    key: Template
    source: str
    pos: int
    quote: str = ""


Node = Text | Call | Index


@dataclass(frozen=True)
class Template:
    """A sequence of text and expressions; one expression alone keeps its value's type."""

    parts: tuple[Node, ...]

    @property
    def single(self) -> Call | Index | None:
        """The expression, when the template is exactly one expression and nothing else."""
        if len(self.parts) == 1 and not isinstance(self.parts[0], Text):
            return self.parts[0]
        return None


def has_expression(text: str) -> bool:
    """Cheap test: can this string hold an expression at all?"""
    return "$" in text


def _is_name_start(ch: str) -> bool:
    return ch.isascii() and (ch.isalpha() or ch == "_")


def _is_name_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_TEXT:
            raise ExpressionLimitError(
                f"expression text is {len(text)} characters long; the limit is {MAX_TEXT}",
                text[:200],
            )
        self.s = text
        self.n = len(text)
        self.depth = 0

    def error(self, message: str, pos: int) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(message, self.s, pos)

    def call_at(self, i: int) -> int | None:
        """If a call starts at ``i`` (a ``$``), the index of its ``(``; else None."""
        j = i + 1
        if j < self.n and _is_name_start(self.s[j]):
            while j < self.n and _is_name_char(self.s[j]):
                j += 1
        if j < self.n and self.s[j] == "(":
            return j
        return None

    def template(self, i: int, stop: str, quote: str = "") -> tuple[Template, int]:
        """Parse from ``i`` up to (not including) the first unnested character in ``stop``.

        Used at the top level (``stop`` empty) and inside an index (``stop`` is ``]``).
        """
        parts: list[Node] = []
        buf: list[str] = []
        start = i
        nest = 0  # plain brackets inside an index key, so that "a[b]" keys work
        while i < self.n:
            ch = self.s[i]
            if ch in stop and nest == 0:
                break
            if ch == "\\":
                if i + 1 < self.n:
                    buf.append(self.s[i + 1])
                    i += 2
                else:
                    buf.append(ch)
                    i += 1
                continue
            if ch == "$":
                paren = self.call_at(i)
                if paren is not None:
                    if buf:
                        parts.append(Text("".join(buf), start, quote))
                        buf = []
                    node, i = self.call(i, paren, quote)
                    parts.append(node)
                    start = i
                    continue
            if stop and ch == "[":
                nest += 1
            elif stop and ch == "]":
                nest -= 1
            buf.append(ch)
            i += 1
        if buf:
            parts.append(Text("".join(buf), start, quote))
        return Template(tuple(parts)), i

    def call(self, dollar: int, paren: int, quote: str) -> tuple[Call | Index, int]:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionLimitError(
                f"expressions nested deeper than {MAX_NESTING} levels", self.s, dollar
            )
        name = self.s[dollar + 1 : paren]
        args, end = self.body(paren + 1, dollar)
        body = _join_args(args, paren + 1)
        node: Call | Index = Call(name, body, tuple(args), self.s[dollar:end], dollar, quote)
        i = end
        while i < self.n and self.s[i] == "[":
            key, j = self.template(i + 1, "]")
            if j >= self.n:
                raise self.error("unclosed '[' after an expression", i)
            i = j + 1
            node = Index(node, key, self.s[dollar:i], dollar, quote)
        self.depth -= 1
        return node, i

    def body(self, i: int, dollar: int) -> tuple[list[Template], int]:
        """Parse call arguments from just after ``(``; return them and the index after ``)``."""
        args: list[Template] = []
        parts: list[Node] = []
        buf: list[str] = []
        start = i
        depth = 0
        quote = ""
        while True:
            if i >= self.n:
                if quote:
                    raise self.error(f"unclosed quote {quote} in expression", dollar)
                raise self.error("unclosed '(' in expression", dollar)
            ch = self.s[i]
            if ch == "\\":
                if i + 1 < self.n:
                    buf.append(self.s[i + 1])
                    i += 2
                    continue
                raise self.error("unclosed '(' in expression", dollar)
            if ch == "$":
                paren = self.call_at(i)
                if paren is not None:
                    if buf:
                        parts.append(Text("".join(buf), start, quote))
                        buf = []
                    node, i = self.call(i, paren, quote)
                    parts.append(node)
                    start = i
                    continue
            if quote:
                if ch == quote:
                    quote = ""
                    buf.append(ch)
                    parts.append(Text("".join(buf), start, ch))
                    buf = []
                    start = i + 1
                else:
                    buf.append(ch)
                i += 1
                continue
            if ch in "\"'":
                if buf:
                    parts.append(Text("".join(buf), start))
                    buf = []
                start = i
                quote = ch
                buf.append(ch)
                i += 1
                continue
            if ch in "([":
                depth += 1
            elif ch in ")]":
                if depth == 0:
                    if ch == "]":
                        raise self.error("unbalanced ']' in expression", i)
                    if buf:
                        parts.append(Text("".join(buf), start))
                    args.append(Template(tuple(parts)))
                    return args, i + 1
                depth -= 1
            elif ch == "," and depth == 0:
                if buf:
                    parts.append(Text("".join(buf), start))
                    buf = []
                args.append(Template(tuple(parts)))
                parts = []
                start = i + 1
                i += 1
                continue
            buf.append(ch)
            i += 1


def _join_args(args: list[Template], pos: int) -> Template:
    """The whole body as one template: the arguments joined by their commas."""
    parts: list[Node] = []
    for k, arg in enumerate(args):
        if k:
            parts.append(Text(",", pos))
        parts.extend(arg.parts)
    return Template(tuple(parts))


def parse(text: str) -> Template:
    """Parse a string into a template; ``ExpressionSyntaxError`` says what and where."""
    parser = _Parser(text)
    template, end = parser.template(0, "")
    assert end == len(text)
    return template
