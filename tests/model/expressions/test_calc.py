import pytest

from frazil.errors import ExpressionError, ExpressionLimitError, ExpressionSyntaxError
from frazil.model.expressions.calc import MAX_INT_BITS, MAX_LEN, calculate


def calc(text, **variables):
    return calculate(text, variables, [10_000])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("-3 + +2", -1),
        ("1 < 2 <= 2 < 3", True),
        ("1 < 2 > 3", False),
        ("3 == 3.0 != 4", True),
        ("'a' in 'cat'", True),
        ("4 not in [1, 2]", True),
        ("not 0", True),
        ("1 and 0 or 5", 5),
        ("'big' if 10 > 3 else 'small'", "big"),
        ("min(4, 2, 8) + max([1, 9])", 11),
        ("abs(-2.5)", 2.5),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("int('42') + int(3.9)", 45),
        ("float('1.5') * 2", 3.0),
        ("str(12) + 'a'", "12a"),
        ("len('abcd') + len([1, 2])", 6),
        ("'ab' * 3", "ababab"),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("(1, 2)", [1, 2]),
        ("true and not false", True),
        ("null", None),
    ],
)
def test_arithmetic_logic_and_functions(text, value):
    assert calc(text) == value


def test_variables_are_the_only_names():
    assert calc("x * 2 + y", x=4, y=1) == 9
    with pytest.raises(ExpressionError, match="unknown name 'z'"):
        calc("z + 1")


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("__import__('os')", "only these functions"),
        ("open('/etc/passwd')", "only these functions"),
        ("(1).__class__", "attribute access"),
        ("[1, 2][0]", "subscripts"),
        ("lambda: 1", "lambda"),
        ("[x for x in [1]]", "comprehensions"),
        ("{'a': 1}", "dict literals"),
        ("{1}", "set literals"),
        ("f'{1}'", "f-strings"),
        ("1 << 2", "not allowed"),
        ("1 ^ 2", "not allowed"),
        ("~1", "not allowed"),
        ("max(*[1])", "starred"),
        ("round(x=1)", "keyword arguments"),
        ("(y := 1)", "assignment"),
        ("b'bytes'", "not allowed"),
        ("1j", "not allowed"),
        ("...", "not allowed"),
        ("min", "must be called"),
    ],
)
def test_everything_else_is_rejected(text, what):
    with pytest.raises(ExpressionError, match=what):
        calc(text)


@pytest.mark.parametrize(
    "text",
    ["9 ** 9 ** 9", "2 ** 5000", "10 ** 4000 * 10", "'x' * 10 ** 9", "[0] * 10 ** 7"],
)
def test_sizes_are_bounded_before_computing(text):
    with pytest.raises(ExpressionLimitError):
        calc(text)


def test_big_but_allowed_values():
    assert calc(f"2 ** {MAX_INT_BITS - 1}").bit_length() == MAX_INT_BITS
    assert len(calc(f"'x' * {MAX_LEN}")) == MAX_LEN


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("1 / 0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("'a' + 1", "needs numbers"),
        ("'%d' % 5", "needs numbers"),
        ("1 < 'a'", "cannot evaluate"),
        ("(-8) ** 0.5", "no real value"),
        ("10.0 ** 400", "too large"),
        ("int('abc')", "cannot evaluate"),
        ("min()", "of nothing"),
        ("round(1.5, 1000)", "digits"),
        ("1 in 5", "needs a string or a list"),
    ],
)
def test_runtime_errors_are_expression_errors(text, what):
    with pytest.raises(ExpressionError, match=what):
        calc(text)


def test_syntax_error_has_column():
    with pytest.raises(ExpressionSyntaxError) as info:
        calc("1 + * 2")
    assert info.value.position is not None


def test_step_budget_is_shared_and_enforced():
    budget = [5]
    with pytest.raises(ExpressionLimitError, match="too many evaluation steps"):
        calculate("1 + 2 + 3 + 4 + 5", {}, budget)
    budget = [100]
    calculate("1 + 2", {}, budget)
    assert budget[0] == 100 - 4  # Expression, BinOp and two constants


def test_deep_nesting_is_an_error_not_a_crash():
    assert calc("(" * 150 + "1" + ")" * 150) == 1  # parentheses make no nodes
    for text in ("(" * 300 + "1" + ")" * 300, "-" * 5000 + "1", "not " * 2000 + "1"):
        with pytest.raises(ExpressionError):
            calc(text)


def test_empty_and_oversized_sources():
    with pytest.raises(ExpressionSyntaxError, match="empty"):
        calc("  ")
    with pytest.raises(ExpressionLimitError, match="longer than"):
        calc("1+" * 6000 + "1")
