import pytest

from frazil.errors import (
    ExpressionCycleError,
    ExpressionError,
    ExpressionLimitError,
    UnresolvedReference,
)
from frazil.model.expressions import Context, Evaluator, evaluate, literal


def ctx(**kw):
    base = dict(
        steering={
            "nevents": 1000,
            "energies": [10, 100, 1000],
            "detector": {"name": "IC86", "strings": 86},
            "prefix": "sim",
            "outfile": "$steering(prefix)_$sprintf('%06d', $args(job)).i3",
            "double": "$eval($steering(nevents) * 2)",
        },
        system={"photon_tables": "/cvmfs/tables"},
        options={"job": 3, "dataset": 21000, "jobs_submitted": 10, "iter": 1, "task": "gen"},
        environ={"HOME": "/home/ice"},
        metadata={"description": "CORSIKA", "owner": "ice"},
        seed=1234,
    )
    base.update(kw)
    return Context(**base)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$steering(nevents)", 1000),
        ("$system(photon_tables)", "/cvmfs/tables"),
        ("$args(job)", 3),
        ("$options(dataset)", 21000),
        ("$environ(HOME)", "/home/ice"),
        ("$metadata(owner)", "ice"),
        ("$eval($args(job) + 1)", 4),
        ('$sprintf("%06d", $args(job))', "000003"),
        ("$sum($steering(energies))", 1110),
        ("$min($steering(energies))", 10),
        ("$max(3, 9, 4)", 9),
        ("$len($steering(energies))", 3),
        ("$len(abcd)", 4),
        ("$sum(1, 2.5)", 3.5),
    ],
)
def test_every_keyword(text, value):
    assert evaluate(text, ctx()) == value


def test_the_padding_case():
    assert evaluate('$sprintf("%06d", $args(job))', ctx()) == "000003"
    assert evaluate("$sprintf(%06d, $args(job))", ctx()) == "000003"


def test_a_lone_expression_keeps_its_type_text_around_it_does_not():
    assert evaluate("$steering(energies)", ctx()) == [10, 100, 1000]
    assert evaluate("e=$steering(energies)", ctx()) == "e=[10, 100, 1000]"
    assert evaluate(" $args(job)", ctx()) == " 3"


def test_recursive_parameters():
    assert evaluate("$steering(outfile)", ctx()) == "sim_000003.i3"
    assert evaluate("$eval($steering(double) + 1)", ctx()) == 2001


def test_nesting_inside_arguments():
    text = '$sprintf("%s/%08d.i3", $steering(prefix), $eval($args(job) * $steering(nevents)))'
    assert evaluate(text, ctx()) == "sim/00003000.i3"


def test_indexing_lists_dicts_and_chains():
    c = ctx(steering={"grid": [[1, 2], [3, 4]], "d": {"k": {"x": 7}}, "i": 1})
    assert evaluate("$steering(grid)[1][0]", c) == 3
    assert evaluate("$steering(grid)[$steering(i)][$eval($steering(i) - 1)]", c) == 3
    assert evaluate("$steering(d)[k][x]", c) == 7
    assert evaluate("$steering(d)['k'][x]", c) == 7
    assert evaluate("$steering(grid)[-1]", c) == [3, 4]
    with pytest.raises(ExpressionError, match="out of range"):
        evaluate("$steering(grid)[2]", c)
    with pytest.raises(ExpressionError, match="must be an integer"):
        evaluate("$steering(grid)[a]", c)
    with pytest.raises(UnresolvedReference, match="no key 'y'"):
        evaluate("$steering(d)[k][y]", c)
    with pytest.raises(ExpressionError, match="cannot index"):
        evaluate("$steering(i)[0]", c)


def test_scoped_lookup_innermost_wins():
    c = ctx(
        scopes=(
            ("module", {"nevents": 5}),
            ("tray", {"nevents": 50, "gcd": "gcd_$(nevents).i3"}),
            ("task", {"only_task": "t"}),
        )
    )
    assert evaluate("$(nevents)", c) == 5
    assert evaluate("$(gcd)", c) == "gcd_5.i3"  # evaluated in the caller's scope
    assert evaluate("$(only_task)", c) == "t"
    assert evaluate("$(prefix)", c) == "sim"  # steering
    assert evaluate("$(dataset)", c) == 21000  # options
    with pytest.raises(UnresolvedReference, match="module, tray, task, steering, options"):
        evaluate("$(nothing)", c)


def test_escapes():
    assert evaluate(r"price: \$5 for $args(job)", ctx()) == "price: $5 for 3"
    assert evaluate(r"\$steering(nevents)", ctx()) == "$steering(nevents)"
    assert evaluate(r"$sprintf('a\,b %s', 1)", ctx()) == "a,b 1"
    assert evaluate(r"$eval(1 \+ 1)", ctx()) == 2


def test_strings_without_dollar_are_untouched():
    assert evaluate(r"C:\path\to (x) [y]", ctx()) == r"C:\path\to (x) [y]"
    assert evaluate("echo $HOME", ctx()) == "echo $HOME"


def test_lists_and_dicts_are_walked():
    value = {"n": "$args(job)", "files": ["a_$args(job)", 5], "$steering(prefix)": True}
    assert evaluate(value, ctx()) == {"n": 3, "files": ["a_3", 5], "sim": True}


def test_eval_binds_values_instead_of_pasting_text():
    c = ctx(steering={"name": "x); __import__('os').system('id'", "n": "7"})
    assert evaluate("$eval(len($steering(name)))", c) == len("x); __import__('os').system('id'")
    assert evaluate("$eval($steering(n) * 2)", c) == 14  # numeric strings become numbers
    assert evaluate("$eval('$steering(n)' + 'b')", c) == "7b"  # inside quotes: text


def test_choice_is_deterministic_per_job_and_varies_across_jobs():
    picks = {evaluate("$choice(a, b, c, d, e, f)", ctx(seed=s)) for s in range(40)}
    assert picks == {"a", "b", "c", "d", "e", "f"}
    c = ctx()
    assert evaluate("$choice(1, 2, 3)", c) in (1, 2, 3)
    first = [evaluate(f"$choice($steering(energies)) {i}", c) for i in range(3)]
    again = [evaluate(f"$choice($steering(energies)) {i}", c) for i in range(3)]
    assert first == again
    with pytest.raises(ExpressionError, match="needs something"):
        evaluate("$choice()", c)


def test_cycles_name_the_chain():
    c = ctx(steering={"a": "$steering(b)", "b": "x$steering(c)", "c": "$steering(a)"})
    with pytest.raises(ExpressionCycleError) as info:
        evaluate("$steering(a)", c)
    assert "steering(a) -> steering(b) -> steering(c) -> steering(a)" in str(info.value)
    c = ctx(scopes=(("module", {"n": "$(n)"}),))
    with pytest.raises(ExpressionCycleError, match=r"module\.n -> module\.n"):
        evaluate("$(n)", c)


def test_depth_limit():
    steering = {f"p{i}": f"$steering(p{i + 1})" for i in range(50)}
    steering["p50"] = "end"
    with pytest.raises(ExpressionLimitError, match="deeper than 32"):
        evaluate("$steering(p0)", ctx(steering=steering))
    assert evaluate("$steering(p0)", ctx(steering=steering, max_depth=60)) == "end"


def test_exponential_expansion_hits_the_step_or_size_bound():
    steering = {f"p{i}": f"$steering(p{i + 1})$steering(p{i + 1})" for i in range(30)}
    steering["p30"] = "xx"
    # memoised: each parameter is evaluated once, so only the text size grows
    with pytest.raises(ExpressionLimitError, match="longer than"):
        evaluate("$steering(p0)", ctx(steering=steering))


def test_step_budget():
    text = "$eval(" + "+".join(["1"] * 500) + ")"
    with pytest.raises(ExpressionLimitError, match="steps"):
        evaluate(text, ctx(max_steps=100))


def test_strict_mode_names_what_and_where():
    with pytest.raises(UnresolvedReference) as info:
        evaluate("out_$steering(nevent).i3", ctx())
    err = info.value
    assert "no steering value 'nevent'" in str(err)
    assert err.position == 4 and err.text == "out_$steering(nevent).i3"
    assert "nevents" in str(err)  # the known names help spot the typo


def test_lenient_mode_keeps_the_text():
    c = ctx(strict=False)
    assert evaluate("a $steering(missing) b $args(job)", c) == "a $steering(missing) b 3"
    assert evaluate("$eval($steering(missing) + 1)", c) == "$eval($steering(missing) + 1)"
    assert evaluate("$unknownfn(1)", c) == "$unknownfn(1)"
    assert evaluate("$steering(detector)[nope]", c) == "$steering(detector)[nope]"
    with pytest.raises(ExpressionError, match="division by zero"):
        evaluate("$eval(1/0)", c)  # lenient is about names, not about broken arithmetic


def test_unknown_function_is_an_error():
    with pytest.raises(UnresolvedReference, match=r"unknown function \$stearing\(\)"):
        evaluate("$stearing(x)", ctx())


def test_deferred_site_values_become_placeholders():
    ev = Evaluator(ctx(system={}, environ={}, defer_site_values=True))
    assert ev.evaluate("$system(gpu_opts) $environ(X)") == "$system(gpu_opts) $environ(X)"
    assert ev.deferred == ["$system(gpu_opts)", "$environ(X)"]


def test_environ_and_metadata_values_are_not_evaluated_again():
    c = ctx(environ={"PS1": "$steering(nevents)"}, metadata={"description": "$(x)"})
    assert evaluate("$environ(PS1)", c) == "$steering(nevents)"
    assert evaluate("$metadata(description)", c) == "$(x)"


def test_same_answer_twice():
    c = ctx()
    texts = ["$steering(outfile)", "$choice(1,2,3,4,5)", "$eval($args(job) ** 2)"]
    assert [evaluate(t, c) for t in texts] == [evaluate(t, c) for t in texts]


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("12", 12),
        ("-3", -3),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("abc", "abc"),
        ("1.2.3", "1.2.3"),
        ("", ""),
    ],
)
def test_literal(word, value):
    assert literal(word) == value and type(literal(word)) is type(value)


def test_errors_name_the_parameters_they_came_through():
    c = ctx(steering={"a": "x_$steering(b)", "b": "$eval(1/0)"})
    with pytest.raises(ExpressionError) as info:
        evaluate("$steering(a)", c)
    assert info.value.via == ["steering(b)", "steering(a)"]
    assert str(info.value).endswith("(via steering(b) <- steering(a))")
