"""Property tests: whatever the input, evaluation ends, stays in the sandbox, and repeats."""

import ast
import pathlib
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import frazil
from frazil.errors import ExpressionError
from frazil.model.expressions import Context, Evaluator
from frazil.model.expressions.calc import MAX_SIZE, calculate

CONTEXT = Context(
    steering={"a": 3, "l": [1, 2, 3], "d": {"k": "v"}, "s": "$steering(a)", "r": "$steering(r)"},
    system={"x": "y"},
    options={"job": 7, "dataset": 1, "iter": 0},
    environ={"E": "e"},
    metadata={"m": "n"},
    scopes=(("module", {"p": "$(q)", "q": 2}),),
    seed=99,
    max_steps=20_000,
    max_size=50_000,
)

FRAGMENTS = [
    "$",
    "(",
    ")",
    "[",
    "]",
    "\\",
    '"',
    "'",
    ",",
    " ",
    "$(",
    "$eval(",
    "$sprintf(",
    "$choice(",
    "$steering(",
    "$args(",
    "$options(",
    "$system(",
    "$environ(",
    "$metadata(",
    "$sum(",
    "$min(",
    "$max(",
    "$len(",
    "a",
    "l",
    "d",
    "k",
    "s",
    "r",
    "p",
    "job",
    "%06d",
    "%s",
    "1",
    "0",
    "-",
    "+",
    "*",
    "**",
    "/",
    "9",
    "x",
    "__import__",
    ".",
    "os",
    "lambda",
    ":",
    "not",
    "if",
    "else",
    "for",
    "in",
    "==",
    "<",
    "[0]",
    "__class__",
    "e",
    "%(",
    "%999d",
]

text_inputs = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=40).map("".join)

PY_FRAGMENTS = [
    "__import__('os')",
    ".system",
    "('id')",
    "open",
    "(",
    ")",
    "[",
    "]",
    "1",
    "2",
    "9",
    "**",
    "*",
    "+",
    "-",
    "/",
    "//",
    "%",
    "'a'",
    '"b"',
    ",",
    " if ",
    " else ",
    " and ",
    " or ",
    "not ",
    "lambda x: x",
    "[x for x in (1,2)]",
    ".__class__",
    ".__subclasses__()",
    "max",
    "min",
    "len",
    "str",
    "int",
    "abs",
    "round",
    "float",
    "x",
    "true",
    " in ",
    "<",
    "==",
    "globals()",
    "__builtins__",
    "getattr",
    "exec",
    "eval",
    "compile",
    ":",
    "{",
    "}",
    "*[1]",
]

py_inputs = st.lists(st.sampled_from(PY_FRAGMENTS), min_size=1, max_size=25).map("".join)

JSONISH = (type(None), bool, int, float, str, list, dict)


def _outcome(run):
    """Run with a generous liveness bound; return ('ok', value) or ('error', type, message)."""
    box = []

    def target():
        try:
            box.append(("ok", run()))
        except ExpressionError as exc:
            box.append(("error", type(exc).__name__, str(exc)))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "evaluation did not end"
    assert box, "evaluation raised something other than an ExpressionError"
    return box[0]


def _only_data(value):
    assert isinstance(value, JSONISH), type(value)
    if isinstance(value, list):
        for v in value:
            _only_data(v)
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            _only_data(v)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_inputs)
def test_templates_end_in_a_value_or_an_expression_error(text):
    for strict in (True, False):
        evaluator = Evaluator(Context(**{**CONTEXT.__dict__, "strict": strict}))
        outcome = _outcome(lambda ev=evaluator: ev.evaluate(text))
        if outcome[0] == "ok":
            _only_data(outcome[1])
            if isinstance(outcome[1], str):
                assert len(outcome[1]) <= CONTEXT.max_size
        assert evaluator._budget[0] >= -1  # the step bound held


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(py_inputs)
def test_eval_sandbox_returns_only_data(source):
    outcome = _outcome(lambda: calculate(source, {"x": 1}, [10_000]))
    if outcome[0] == "ok":
        _only_data(outcome[1])
        if isinstance(outcome[1], str | list):
            assert len(outcome[1]) <= MAX_SIZE


@settings(max_examples=300, deadline=None)
@given(text_inputs)
def test_evaluation_is_repeatable(text):
    first = _outcome(lambda: Evaluator(CONTEXT).evaluate(text))
    second = _outcome(lambda: Evaluator(CONTEXT).evaluate(text))
    assert first == second


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**9))
def test_padding_never_lost(job, seed):
    ctx = Context(options={"job": job}, seed=seed)
    assert Evaluator(ctx).evaluate('$sprintf("%06d", $args(job))') == f"{job:06d}"


def test_known_escape_attempts_are_refused(tmp_path):
    marker = tmp_path / "escaped"
    attempts = [
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        "(1).__class__.__bases__[0].__subclasses__()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        "getattr(1, '__class__')",
        f"exec(\"open('{marker}','w')\")",
        "globals()",
        "__builtins__",
        "(lambda: 1)()",
        "str.__mro__",
        "max.__self__",
    ]
    for source in attempts:
        outcome = _outcome(lambda s=source: Evaluator(CONTEXT).evaluate(f"$eval({s})"))
        assert outcome[0] == "error", source
    assert not marker.exists()


def test_no_eval_exec_or_compile_in_the_package():
    root = pathlib.Path(frazil.__file__).parent
    banned = {"eval", "exec", "compile", "__import__"}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in banned, f"{path}:{node.lineno} calls {node.func.id}"
