import time

import pytest

from frazil.errors import ExpressionError, ExpressionLimitError, ExpressionSyntaxError
from frazil.model.expressions.calc import MAX_INT_BITS, MAX_SIZE, calculate


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
    assert len(calc(f"'x' * {MAX_SIZE}")) == MAX_SIZE


def test_the_cubic_comparison_is_refused_before_it_runs():
    # each list alone has 800 items; nested, 800**3: n**3 comparisons inside one operation
    cube = "[[[1] * 800] * 800] * 800"
    started = time.perf_counter()
    with pytest.raises(ExpressionLimitError, match="nested items counted"):
        calculate(f"{cube} == {cube}", {}, [200_000])
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    "text",
    [
        "[[1] * 400] * 400",  # 160,401 items: * counts what it repeats
        "[[1] * 300] * 300 + [[1] * 300] * 300",  # + counts both sides
        "[[1] * 60000, [2] * 60000]",  # a list literal counts its items' items
        "['x' * 60000, 'y' * 60000]",  # a string counts its characters
        "[x, x]",  # a variable counts what it holds
    ],
)
def test_sizes_count_nested_items(text):
    with pytest.raises(ExpressionLimitError, match="nested items counted"):
        calculate(text, {"x": [[0] * 500] * 120}, [10**6])


def test_nested_values_within_the_bound_are_fine():
    assert len(calc("[[1] * 300] * 300")) == 300
    assert calc("[[0] * 3] * 2 == [[0, 0, 0], [0, 0, 0]]") is True
    assert calc("len([x, x])", x=[[0] * 100] * 100) == 2


@pytest.mark.parametrize(
    "text",
    [
        " and ".join(["x == y"] * 100),  # every comparison walks the items
        " and ".join(["[0] not in x"] * 100),  # so does every 'in'
        " and ".join(["len(str(x)) > 0"] * 100),  # and every str() (which builds text too)
        " and ".join(["max(x) == max(x)"] * 100),  # and min/max
    ],
)
def test_work_on_whole_values_counts_against_the_step_budget(text):
    big = [[0] * 300] * 300  # 90,301 items, allowed
    assert calculate(text.split(" and ")[0], {"x": big, "y": [[0] * 300] * 300}, [200_000])
    with pytest.raises(ExpressionLimitError, match=r"too many evaluation steps|builds more"):
        calculate(text, {"x": big, "y": [[0] * 300] * 300}, [200_000])


def test_what_one_expression_builds_is_bounded():
    text = " and ".join(["len(x * 2) > 0"] * 30)  # 30 copies of 50,000 items each
    with pytest.raises(ExpressionLimitError, match="builds more than"):
        calculate(text, {"x": [0] * 25_000}, [10**7])


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
