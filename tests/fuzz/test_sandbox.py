"""The expression sandbox holds, wherever in a config an expression sits.

Watched with an audit hook (PEP 578): while a config is validated or an expression is
evaluated, Python raises no audit event but ``compile`` (``ast.parse``, which the ``$eval``
sandbox reads its text with): no ``open``, no ``import``, no ``exec``, no ``os.system``, no
subprocess, no socket, no access to frames or code objects. Expressions that ask for huge
numbers or deep nesting end in an ``ExpressionError`` within a bounded time.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frazil.errors import ExpressionError
from frazil.loader import inspect_text
from frazil.model.expressions import Context, Evaluator
from tests.conftest import EXAMPLE
from tests.fuzz.strategies import HOSTILE_EXPRESSIONS, expressions, to_json

#: The audit events validation and evaluation may raise: ``ast.parse``, and ``id()`` (which
#: ``copy.deepcopy`` calls).
ALLOWED_EVENTS = {"compile", "builtins.id"}

_watched: dict[int, list[tuple[str, str]]] = {}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    seen = _watched.get(threading.get_ident())
    if seen is not None and event not in ALLOWED_EVENTS:
        seen.append((event, repr(args)[:200]))


sys.addaudithook(_audit)  # hooks cannot be removed: it records only inside ``watching``


@contextmanager
def watching() -> Iterator[list[tuple[str, str]]]:
    """Record the audit events that this thread raises inside the block."""
    seen: list[tuple[str, str]] = []
    _watched[threading.get_ident()] = seen
    try:
        yield seen
    finally:
        del _watched[threading.get_ident()]


def test_the_watch_sees_what_it_should():
    sys.modules.pop("colorsys", None)
    with watching() as seen:
        Path(__file__).read_text()
        __import__("colorsys")
        exec("1")  # the event this watch is for
    assert {"open", "import", "exec"} <= {event for event, _ in seen}


CONTEXT = Context(
    steering={"p": [1, 2, 3], "d": {"k": "v"}, "x": 3},
    system={"storage": "file:///tmp"},
    options={"job": 7, "iter": 0},
    environ={"HOME": "/home/x"},
    metadata={"description": "d"},
    max_steps=20_000,
)


def _evaluate(text: str) -> Any:
    try:
        return Evaluator(CONTEXT).evaluate(text)
    except ExpressionError as exc:
        return exc


# warm up every lazily imported module outside the watch
_evaluate("$eval(1 + 1) $sprintf('%d', 1) $choice(a, b)")
inspect_text(EXAMPLE.read_text(), "example.yaml")


#: Every place in the example config where a string goes, and how to put one there.
def _places(config: dict[str, Any]) -> list[Callable[[str], None]]:
    task = config["tasks"][0]
    module = task["trays"][0]["modules"][0]
    return [
        lambda v: config["steering"]["parameters"].__setitem__("nevents", v),
        lambda v: config["steering"]["system"].__setitem__("storage", v),
        lambda v: config["options"].__setitem__("free", v),
        lambda v: config.__setitem__("description", v),
        lambda v: task["requirements"].__setitem__("time", v),
        lambda v: task["requirements"].__setitem__("memory", v),
        lambda v: task.__setitem__("container", v),
        lambda v: task["data"][0].__setitem__("remote", v),
        lambda v: task["data"][0].__setitem__("local", v),
        lambda v: task["trays"][0].__setitem__("iterations", v),
        lambda v: task["trays"][0]["env"].__setitem__("version", v),
        lambda v: module.__setitem__("src", v),
        lambda v: module["args"].__setitem__("seed", v),
        lambda v: module.__setitem__("args", v),
        lambda v: module.__setitem__("env_shell", v),
        lambda v: module.__setitem__("configs", {"c.json": v}),
        lambda v: module.__setitem__("parameters", {"m": v}),
        lambda v: task.__setitem__("batchsys", {"slurm": {"account": v}}),
    ]


def _example() -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


PLACES = len(_places(_example()))


@pytest.mark.parametrize("n", range(len(HOSTILE_EXPRESSIONS)))
def test_hostile_expressions_anywhere_in_a_config_stay_inside(n, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "MARKER" would land here
    expression = HOSTILE_EXPRESSIONS[n]
    for k in {n % PLACES, (n + 5) % PLACES, (n + 11) % PLACES}:  # each place gets several
        config = _example()
        _places(config)[k](expression)
        text = to_json(config)
        started = time.monotonic()
        with watching() as seen:
            report = inspect_text(text, "x.json").report
        assert seen == [], (k, seen)
        assert time.monotonic() - started < 20, k
        for p in report.problems:
            assert p.path and p.line is not None, p
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("expression", HOSTILE_EXPRESSIONS, ids=range(len(HOSTILE_EXPRESSIONS)))
def test_hostile_expressions_end_in_an_error_or_plain_data(expression, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    with watching() as seen:
        value = _evaluate(expression)
    assert seen == []
    assert time.monotonic() - started < 10
    assert isinstance(value, ExpressionError | str | int | float | list), type(value)
    if not isinstance(value, ExpressionError):
        # what comes out is data: nothing of Python's object graph
        assert "<class" not in str(value) and "<built-in" not in str(value), value
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("$eval(9**9**9)", "larger than 4096 bits"),
        ("$eval(2**100000)", "larger than 4096 bits"),
        ("$eval(1.5**100000)", "too large"),
        ("$eval('a' * 10**9)", "longer than"),
        ("$eval([1] * 10**9)", "longer than"),
        ("$eval(int('9' * 5000))", "longer than 1000"),
        ("$eval(" + "(" * 500 + "1" + ")" * 500 + ")", "nested"),
        ("$eval(" + "-" * 5000 + "1)", "nested"),
        ("$eval(" * 100 + "1" + ")" * 100, "nested deeper"),
        ("$steering(" * 200 + "x" + ")" * 200, "nested deeper"),
        ("$sprintf('%0999999d', 1)", "over 256"),
        ("$eval(().__class__)", "attribute access not allowed"),
        ("$eval(__import__('os'))", "only these functions may be called"),
        ("$eval(open('x', 'w'))", "only these functions may be called"),
        ("$steering(p)[__class__]", "list index must be an integer"),
        ("$steering(d)[__class__]", "no key '__class__'"),
        ("$(__class__)", "no parameter '__class__'"),
    ],
)
def test_limits_and_refusals_name_the_cause(text, error):
    value = _evaluate(text)
    assert isinstance(value, ExpressionError) and error in str(value), value


@settings(
    max_examples=100,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(expressions, min_size=1, max_size=3).map(" ".join), st.integers(0, PLACES - 1))
def test_random_expressions_in_a_config_stay_inside(expression, place):
    config = _example()
    _places(config)[place](expression)
    with watching() as seen:
        report = inspect_text(to_json(config), "x.json").report
        value = _evaluate(expression)
    assert seen == []
    assert isinstance(value, ExpressionError | str | int | float | bool | list | dict | None)
    for p in report.problems:
        assert p.path and p.line is not None, p
