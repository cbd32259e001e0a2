import pytest

from frazil.errors import ExpressionError, ExpressionLimitError
from frazil.model.expressions.sprintf import MAX_WIDTH, sprintf


@pytest.mark.parametrize(
    ("fmt", "args", "out"),
    [
        ("%06d", [3], "000003"),
        ("%06d", ["3"], "000003"),  # values that went through text
        ("%06d", [3.0], "000003"),
        ("%-5s|", ["ab"], "ab   |"),
        ("%.3f", [2], "2.000"),
        ("%.2e", ["12345"], "1.23e+04"),
        ("%x %X %o", [255, 255, 8], "ff FF 10"),
        ("%c%c", [72, "i"], "Hi"),
        ("100%% %s", ["done"], "100% done"),
        ("%s", [[1, 2]], "[1, 2]"),
        ("%r", ["a"], "'a'"),
        ("no conversions", [], "no conversions"),
        ("%+d %ld", [5, 6], "+5 6"),
    ],
)
def test_formats_like_c(fmt, args, out):
    assert sprintf(fmt, args) == out


@pytest.mark.parametrize(
    ("fmt", "args", "what"),
    [
        ("%d %d", [1], "needs more than"),
        ("%d", [1, 2], "uses 1 argument"),
        ("%(name)s", [1], "named fields"),
        ("%*d", [5, 1], "'\\*' widths"),
        ("%d", ["abc"], "needs an integer"),
        ("%f", ["abc"], "needs a number"),
        ("%k", [1], "unknown conversion"),
        ("%c", [-1], "character code"),
        ("50%", [], "bad conversion"),
    ],
)
def test_bad_formats_are_errors(fmt, args, what):
    with pytest.raises(ExpressionError, match=what):
        sprintf(fmt, args)


def test_widths_are_bounded():
    assert len(sprintf(f"%{MAX_WIDTH}d", [1])) == MAX_WIDTH
    with pytest.raises(ExpressionLimitError, match="width"):
        sprintf("%999999999d", [1])
    with pytest.raises(ExpressionLimitError, match="precision"):
        sprintf("%.999999f", [1])
