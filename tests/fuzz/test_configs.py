"""Bad dataset configs: every entry point answers with located problems, and soon.

The entry points are ``frazil.loader`` (``inspect_text``, ``load_config``), the check that
the server and the CLI run in a child process (``frazil.services.validation.check``) and
``frazil.model.validate.check_config``. Whatever the input, they either
accept it or report each problem with a path or a line; nothing else escapes them, and
nothing takes long (each example has a deadline far above what a config takes).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from frazil.config import ValidationSettings
from frazil.errors import ConfigError, Problem
from frazil.loader import MAX_NESTING, inspect_file, inspect_text, load_config
from frazil.model.spec import DatasetConfig
from frazil.model.validate import check_config
from frazil.server.routes_datasets import config_text
from frazil.services.validation import check
from tests.conftest import EXAMPLE
from tests.fuzz.strategies import config_texts, configs, to_json, to_yaml

#: A config takes milliseconds to check; a deadline this far above that only catches hangs
#: (and leaves room for a machine that runs other work too).
CHECK = settings(
    max_examples=150,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _located(problems: tuple[Problem, ...] | list[Problem], text: str) -> None:
    lines = text.count("\n") + 1
    for p in problems:
        assert isinstance(p, Problem) and p.message.strip(), p
        assert p.path or p.line is not None, f"unlocated: {p}"
        assert p.line is None or 1 <= p.line <= lines + 1, p
        assert p.severity in ("error", "warning"), p


def _check_text(text: str, source: str) -> None:
    inspection = inspect_text(text, source)
    report = inspection.report
    _located(report.problems, text)
    if report.ok:
        assert inspection.config is not None
    else:
        assert report.errors


@CHECK
@given(configs(), st.sampled_from([(to_json, "x.json"), (to_yaml, "x.yaml")]))
def test_any_config_is_checked_and_every_problem_located(config, render):
    to_text, source = render
    _check_text(to_text(config), source)


@CHECK
@given(config_texts())
def test_broken_text_is_reported_not_raised(text):
    _check_text(text, "x.yaml")


@CHECK
@given(configs())
def test_the_server_raises_only_located_config_errors(config):
    for value in (config, to_yaml(config)):
        try:
            checked = check(config_text(value), ValidationSettings())
        except ConfigError as exc:
            assert exc.problems and all(p.severity == "error" for p in exc.problems)
            _located(exc.problems, value if isinstance(value, str) else to_json(value))
        else:
            assert isinstance(checked.config, DatasetConfig)


@CHECK
@given(configs(), st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=3))
def test_check_config_reports_for_any_job(config, job, extra):
    try:
        model = DatasetConfig.model_validate(config)
    except ValidationError:
        return  # the loader's tests above cover configs of the wrong shape
    report = check_config(model, job=job, jobs_submitted=job + extra)
    _located(report.problems, "")
    assert report.tasks == len(model.tasks)


@settings(max_examples=60, deadline=timedelta(seconds=10))
@given(configs())
def test_json_and_yaml_renderings_agree(config):
    text = to_yaml(config)
    if text.lstrip().startswith("{"):
        return  # YAML could not write it: the two would be the same text
    if any(
        c in to_json(config) for c in ("\\u0085", "\\u2028", "\\u2029", "\x85", "\u2028", "\u2029")
    ):
        return  # YAML reads these as line breaks (folded in plain scalars); JSON keeps them
    as_json = inspect_text(to_json(config), "x.json").report
    as_yaml = inspect_text(text, "x.yaml").report
    assert {(p.path, p.message) for p in as_json.errors} == {
        (p.path, p.message) for p in as_yaml.errors
    }


def test_load_config_raises_config_error_with_a_source(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("tasks:\n  - name: a\n    trays: [{modules: [{class: m.M, url: http://x}]}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "bad.yaml" in str(info.value)
    assert [p.path for p in info.value.problems] == ["tasks[0].trays[0].modules[0].url"]


# -- documents built to hurt ---------------------------------------------------------------

MODULE = "trays: [{modules: [{src: a.py}]}]"


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for k in range(1, levels):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\ntasks: [{{name: t, {MODULE}}}]\n"


def _problems(text: str, source: str = "x.yaml") -> list[str]:
    report = inspect_text(text, source).report
    _located(report.problems, text)
    return [p.message for p in report.errors]


def test_a_billion_laughs_is_refused_quickly():
    started = time.monotonic()
    messages = _problems(_bomb(9))  # 10**9 values if expanded
    assert any("more than 1000000 values" in m for m in messages)
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [*a]\n",
        f"steering: {{parameters: &p {{x: *p}}}}\ntasks: [{{name: t, {MODULE}}}]\n",
        "[" * 5000 + "]" * 5000,
        "{" + '"a": {' * 3000 + "}" * 3001,
        "a:\n" + "".join("  " * k + "- \n" for k in range(1, 400)),
    ],
    ids=["self-alias", "self-alias-in-parameters", "deep-list", "deep-json", "deep-yaml-block"],
)
def test_recursive_and_deep_documents_are_problems_not_crashes(text):
    messages = _problems(text, "x.json" if text.startswith("{") else "x.yaml")
    assert any(f"deeper than {MAX_NESTING}" in m for m in messages), messages


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2001-12-14", "a date is not a JSON value"),
        ("2001-12-14 21:59:43.10", "a timestamp is not a JSON value"),
        ("!!binary aGVsbG8=", "binary data is not a JSON value"),
        ("!!set {a, b}", "a set is not a JSON value"),
        (".nan", "nan is not a finite number"),
        ("-.inf", "-inf is not a finite number"),
        ('"a\\0b"', "NUL"),
        ('"\\ud800"', "lone surrogate"),
        ("1" + "0" * 5000, "too many digits"),
        ("{1: x}", "the key 1 is not text"),
        ("{null: x}", "the key None is not text"),
    ],
)
def test_values_a_json_config_cannot_hold(value, message):
    text = f"steering: {{parameters: {{p: {value}}}}}\ntasks: [{{name: t, {MODULE}}}]\n"
    messages = _problems(text)
    assert any(message in m for m in messages), messages


@pytest.mark.parametrize(
    ("tasks", "path", "message"),
    [
        ("[{name: a, MOD}, {name: a, MOD}]", "tasks[1].name", "duplicate task name 'a'"),
        ("[{name: a, depends: [b], MOD}, {name: b, depends: [a], MOD}]", "tasks[", "cycle"),
        ("[{name: a, depends: [a], MOD}]", "tasks[0].depends[0]", "depends on itself"),
        ("[{name: a, depends: [7], MOD}]", "tasks[0].depends[0]", "out of range"),
        ('[{name: "a\\n", MOD}]', "tasks[0].name", "a task name is"),
        ("[{name: ../etc, MOD}]", "tasks[0].name", "a task name is"),
        ("[{name: a, requirements: {memory: nan}, MOD}]", "requirements.memory", "got nan"),
        ("[{name: a, requirements: {time: '$eval(1e308 * 10)'}, MOD}]", "requirements.time",
         "got inf"),
        ("[{name: a, trays: [{iterations: 0, modules: [{src: a.py}]}]}]", "iterations",
         "from 1 to 100000"),
        ("[{name: a, trays: [{modules: [{class: m.M, url: 'file:x', name: " + "n" * 256 + "}]}]}]",
         "modules[0].name", "at most 255"),
        ("[{name: a, data: [{remote: x, local: ../../x}], MOD}]", "data[0].local", "plain file"),
        ("[{name: a, data: [{remote: ../../../etc/passwd}], MOD}]", "data[0].remote", "climbs"),
        ("[{name: a, trays: [{modules: [{src: a.py, configs: {../x: 1}}]}]}]", "configs", "plain"),
    ],
)  # fmt: skip
def test_structural_problems_are_located(tasks, path, message):
    text = "tasks: " + tasks.replace("MOD", MODULE) + "\n"
    report = inspect_text(text, "x.yaml").report
    _located(report.problems, text)
    assert any(path in p.path and message in p.message for p in report.errors), report.errors


@pytest.mark.parametrize(
    "url",
    ["http://example.org/m.py", "ftp://example.org/m.py", "javascript:alert(1)", "HTTP://x/m.py"],
)
def test_module_code_only_over_https_or_from_files(url):
    text = f"tasks: [{{name: a, trays: [{{modules: [{{class: m.M, url: '{url}'}}]}}]}}]\n"
    report = inspect_text(text, "x.yaml").report
    assert [p.path for p in report.errors] == ["tasks[0].trays[0].modules[0].url"]
    for fine in ("https://example.org/m.py", "file:///opt/m.py", "m.py"):
        ok = inspect_text(text.replace(url, fine), "x.yaml").report
        assert ok.ok, ok.errors


def test_the_most_iterations_validate_quickly():
    text = (
        "tasks: [{name: a, trays: [{iterations: 100000, modules: "
        "[{src: a.py, args: '$eval($args(iter) * 2)'}, {src: b.py}, {src: c.py}]}]}]\n"
    )
    started = time.monotonic()
    assert inspect_text(text, "x.yaml").report.ok
    assert time.monotonic() - started < 5
    bad = text.replace("$eval($args(iter) * 2)", "$eval(1 / ($args(iter) - 99999))")
    (problem,) = inspect_text(bad, "x.yaml").report.errors  # the last iteration is checked
    assert "division by zero" in problem.message


def test_oversized_files_are_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(EXAMPLE.read_text() + "#" * (16 * 1024 * 1024))
    inspection = inspect_file(path)
    assert inspection.config is None and inspection.source == str(path)
    (problem,) = inspection.report.errors
    assert "the limit is 16777216" in problem.message
