import re

import pytest

from frazil.errors import ExpressionLimitError, ExpressionSyntaxError
from frazil.model.expressions.syntax import MAX_NESTING, Call, Index, Text, parse


def test_plain_text_is_one_text_part():
    t = parse("just words (with parens) and [brackets]")
    assert t.parts == (Text("just words (with parens) and [brackets]", 0),)
    assert t.single is None


def test_dollar_without_call_is_text():
    t = parse("echo $HOME $ 5$")
    assert [type(p) for p in t.parts] == [Text]
    assert t.parts[0].value == "echo $HOME $ 5$"


def test_call_with_name_and_source_span():
    t = parse("a $steering(x) b")
    call = t.parts[1]
    assert isinstance(call, Call)
    assert (call.name, call.source, call.pos) == ("steering", "$steering(x)", 2)
    assert t.parts[0] == Text("a ", 0)
    assert t.parts[2] == Text(" b", 14)


def test_bare_lookup_has_empty_name():
    call = parse("$(nevents)").single
    assert isinstance(call, Call) and call.name == "" and call.source == "$(nevents)"


def test_arguments_split_at_top_level_commas_only():
    call = parse('$sprintf("%s, %s", $eval(max(1, 2)), (a, b), [c, d])').single
    assert isinstance(call, Call)
    assert len(call.args) == 4
    first = call.args[0].parts[0]
    assert isinstance(first, Text) and first.value == '"%s, %s"' and first.quote == '"'


def test_quotes_hide_parentheses_and_keep_expressions():
    call = parse("$eval(')' + \"$steering(x)\")").single
    assert isinstance(call, Call)
    inner = [p for p in call.body.parts if isinstance(p, Call)]
    assert len(inner) == 1 and inner[0].quote == '"'


def test_escapes_make_text():
    t = parse(r"cost \$5 and \$(notacall) and \\")
    assert t.parts == (Text("cost $5 and $(notacall) and \\", 0),)


def test_nested_calls_and_index_chain():
    node = parse("$steering(table)[$args(iter)][name]").single
    assert isinstance(node, Index)
    assert isinstance(node.target, Index)
    assert isinstance(node.target.target, Call)
    assert node.source == "$steering(table)[$args(iter)][name]"


def test_brackets_inside_an_index_key_nest():
    node = parse("$(d)[a[0]]").single
    assert isinstance(node, Index)
    assert node.key.parts == (Text("a[0]", 5),)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("$steering(x", 1, "unclosed '('"),
        ("ok $eval((1+2)", 4, "unclosed '('"),
        ('$sprintf("%d, $args(job))', 1, "unclosed quote"),
        ("$steering(x)[0", 13, "unclosed '['"),
        ("$choice(a])", 10, "unbalanced ']'"),
    ],
)
def test_syntax_errors_name_the_column(text, column, message):
    with pytest.raises(ExpressionSyntaxError, match=re.escape(message)) as info:
        parse(text)
    assert info.value.position == column - 1
    assert f"at column {column}" in str(info.value)


def test_nesting_is_bounded():
    deep = "$eval(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1)
    with pytest.raises(ExpressionLimitError, match="nested deeper"):
        parse(deep)
    ok = "$eval(" * MAX_NESTING + "1" + ")" * MAX_NESTING
    assert isinstance(parse(ok).single, Call)
