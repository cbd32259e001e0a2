"""Hypothesis strategies for bad input: dataset configs, expressions, nasty text.

Configs are built from the shape of a real one, so that most examples get past the shape
checks and reach the deeper ones (names, dependencies, expressions), then broken on purpose:
duplicate and odd task names, dependencies that cycle or point nowhere, values of the wrong
type, unknown keys, expressions of every kind (hostile ones included) in any string.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import strategies as st

#: Text that has broken parsers, databases and file systems before.
NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202e",  # right-to-left override
    "\u200f\u200b",  # right-to-left mark, zero-width space
    "\ufeff",  # byte order mark
    "\ud800",  # a lone surrogate
    "\udfff",
    "💥",
    "👩\u200d🔬",
    "é",
    "\n",
    "a\n",
    "\r\n",
    "\t",
    "../",
    "../../etc/passwd",
    "/etc/passwd",
    "%2e%2e/%2e%2e",
    "..\\..\\x",
    "file:///etc/passwd",
    "http://example.org/x.py",
    "~",
    "$HOME",
    "`id`",
    "$(id)",
    "'; DROP TABLE dataset; --",
    "%s%n%x",
    "{{7*7}}",
    "9" * 400,
    "x" * 300,
]

#: ``$`` expressions that try to leave the sandbox, or to take all of the machine.
HOSTILE_EXPRESSIONS = [
    "$eval(__import__('os').system('id'))",
    "$eval(().__class__.__bases__[0].__subclasses__())",
    "$eval(open('/etc/passwd').read())",
    "$eval(open('MARKER', 'w'))",
    "$eval(getattr(1, '__class__'))",
    "$eval(str.__mro__)",
    "$eval([].__class__)",
    "$eval(max.__self__)",
    "$eval(__builtins__)",
    "$eval(globals())",
    "$eval(exec('1'))",
    "$eval(eval('1'))",
    "$eval(compile('1', 'x', 'eval'))",
    "$eval(lambda: 1)",
    "$eval((lambda: 1)())",
    "$eval([x for x in (1, 2)])",
    "$eval({'a': 1})",
    "$eval(f'{1}')",
    "$eval(9**9**9)",
    "$eval(2**100000)",
    "$eval(10**4097)",
    "$eval((-2)**99999)",
    "$eval(1.5**100000)",
    "$eval('a' * 10**9)",
    "$eval([1] * 10**9)",
    "$eval('x' * 99999 + 'x' * 99999)",
    "$eval(int('9' * 5000))",
    "$eval(round(1.0, 10**9))",
    "$eval(" + "(" * 500 + "1" + ")" * 500 + ")",
    "$eval(" + "-" * 5000 + "1)",
    "$eval(" + "not " * 5000 + "1)",
    "$eval(" + "[" * 300 + "]" * 300 + ")",
    "$eval(1" + " + 1" * 5000 + ")",
    "$sprintf('%0999999d', 1)",
    "$sprintf('%.999999f', 1)",
    "$sprintf('%(x)s', 1)",
    "$sprintf('%*d', 5, 1)",
    "$sprintf(" + "'%s'" + ", 1" * 1000 + ")",
    "$steering(" * 200 + "x" + ")" * 200,
    "$eval(" * 100 + "1" + ")" * 100,
    "$(__class__)",
    "$steering(__class__)",
    "$args(__dict__)",
    "$environ(HOME)",
    "$metadata(__init__)",
    "$steering(p)[__class__]",
    "$steering(p)[0][0][0]",
    "$choice(" + ",".join(["a"] * 10000) + ")",
    "$sum(" + ",".join(["1e308"] * 10) + ")",
    "$len(" + "x" * 100_001 + ")",
]

#: Pieces to assemble expressions from (see also tests/model/expressions/test_properties).
FRAGMENTS = [
    "$", "(", ")", "[", "]", "\\", '"', "'", ",", " ", "$(", "$eval(", "$sprintf(", "$choice(",
    "$steering(", "$args(", "$system(", "$environ(", "$metadata(", "$sum(", "$len(", "p", "q",
    "job", "iter", "%d", "%s", "1", "0", "-", "**", "*", "/", "9", "__class__", "__import__",
    ".", "open(", "os", "lambda", "not ", " if ", " else ", "==", "[0]", "$(p)", "$(q)",
]  # fmt: skip

#: NUL and lone surrogates stop a config at its first reading: rarer, so that the checks
#: after it are reached too.
_STOPPERS = [t for t in NASTY_TEXT if "\x00" in t or "\ud800" <= t[:1] <= "\udfff"]
_plain = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
nasty_text = st.sampled_from([t for t in NASTY_TEXT if t not in _STOPPERS]) | st.text(
    _plain, max_size=12
)

#: Expressions a config would hold.
BENIGN_EXPRESSIONS = [
    "$steering(p)", "$args(job)", "$eval($args(job) + 2)", '$sprintf("%06d", $args(job))',
    "$(q)", "$choice(a, b)", "$steering(p)[0]", "text", "$system(storage)/x", "$environ(HOME)",
]  # fmt: skip

expressions = (
    st.sampled_from(BENIGN_EXPRESSIONS)
    | st.sampled_from(HOSTILE_EXPRESSIONS)
    | st.lists(st.sampled_from(FRAGMENTS) | nasty_text, max_size=20).map("".join)
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | nasty_text
    | expressions
)

#: Any JSON-like value, nested a little.
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(_plain, max_size=6) | nasty_text, inner, max_size=4)
    ),
    max_leaves=12,
)

#: Task names: few, so that duplicates happen.
task_names = st.sampled_from(["a", "b", "c", "gen", "sim.2"])
#: Names that are not task names at all.
bad_task_names = st.sampled_from(["a\n", "", "../x", "a b", "x" * 101, "ñ", "-a", "a/b"])

#: Numbers as a config writes them: plain, numeric text, or an expression.
amounts = (
    st.integers(min_value=0, max_value=64)
    | st.floats(min_value=0, max_value=1e6)
    | st.sampled_from(["2", "0.5", "$eval(1 + 1)", "$steering(p)", "$(q)", "$args(job)"])
)
#: Numbers that should not be: negative, not finite, not numbers, failing expressions.
bad_amounts = (
    st.integers(min_value=-(2**70), max_value=-1)
    | st.sampled_from([float("nan"), float("inf"), -0.5, "1e400", "nan", "-inf", "two", True])
    | st.sampled_from(["$eval(1/0)", "$eval(-1)", "$eval('x')", "$steering(nope)"])
    | expressions
)

#: Parameters, which may refer to each other (chains and cycles).
parameters = st.dictionaries(
    st.sampled_from(["p", "q", "r", "nevents"]),
    st.sampled_from(["$steering(p)", "$steering(q)", "$(r)", "$eval($steering(p) + 1)", "3"])
    | amounts
    | values,
    max_size=3,
)


def _places(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a config, to put something else there."""
    out: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        here = stack.pop()
        items = list(here.items()) if isinstance(here, dict) else list(enumerate(here))
        for key, item in items:
            out.append((here, key))
            if isinstance(item, dict | list):
                stack.append(item)
    return out


@st.composite
def modules(draw: st.DrawFn) -> dict[str, Any]:
    module: dict[str, Any] = {}
    if draw(st.booleans()):
        module["src"] = draw(st.sampled_from(["run.py", "x.sh", "/bin/true"]) | expressions)
    else:
        module["class"] = draw(st.sampled_from(["pkg.Mod", "x"]))
        if draw(st.booleans()):
            module["url"] = draw(
                st.sampled_from(["https://e.org/m.py", "file:///m.py", "m.py", "http://e.org/m.py",
                                 "ftp://x/m.py", "javascript:x", "$system(repo)/m.py"])
            )  # fmt: skip
    for key, strategy in (
        ("args", st.one_of(expressions, st.lists(values, max_size=3),
                           st.dictionaries(st.text(_plain, max_size=5), values, max_size=3))),
        ("parameters", parameters),
        ("configs", st.dictionaries(st.sampled_from(["a.json", "b.txt"]) | nasty_text, values,
                                    max_size=2)),
        ("env_shell", expressions),
        ("name", nasty_text),
    ):  # fmt: skip
        if draw(st.booleans()):
            module[key] = draw(strategy)
    return module


@st.composite
def data_entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {"remote": draw(nasty_text | expressions)}
    for key, strategy in (
        ("local", st.sampled_from(["x.json", "out"]) | nasty_text | expressions),
        ("type", st.sampled_from(["permanent", "job_temp"])),
        ("movement", st.sampled_from(["input", "output", "both"])),
        ("transfer", st.sampled_from([True, False, "maybe", "yes"])),
    ):
        if draw(st.booleans()):
            entry[key] = draw(strategy)
    return entry


@st.composite
def tasks(draw: st.DrawFn, names: list[str]) -> dict[str, Any]:
    tray: dict[str, Any] = {"modules": draw(st.lists(modules(), min_size=1, max_size=2))}
    if draw(st.booleans()):
        tray["iterations"] = draw(st.integers(min_value=1, max_value=3) | amounts)
    if draw(st.booleans()):
        tray["parameters"] = draw(parameters)
    task: dict[str, Any] = {"name": draw(st.sampled_from(names)), "trays": [tray]}
    if draw(st.booleans()):
        # names and indexes of tasks of this config (in any order: cycles happen) or not
        task["depends"] = draw(
            st.lists(st.sampled_from(names) | st.integers(min_value=-1, max_value=4), max_size=2)
        )
    if draw(st.booleans()):
        keys = st.sampled_from(["cpu", "gpu", "memory", "disk", "time", "colour"])
        task["requirements"] = draw(st.dictionaries(keys, amounts, max_size=4))
    if draw(st.booleans()):
        task["data"] = draw(st.lists(data_entries(), max_size=2))
    if draw(st.booleans()):
        task["parameters"] = draw(parameters)
    return task


#: Ways to break a config on purpose: each takes the config and a value to use.
def _bad_name(config: dict[str, Any], value: Any) -> None:
    config["tasks"][0]["name"] = value


def _bad_amount(config: dict[str, Any], value: Any) -> None:
    config["tasks"][-1].setdefault("requirements", {})["memory"] = value


def _bad_iterations(config: dict[str, Any], value: Any) -> None:
    config["tasks"][0]["trays"][0]["iterations"] = value


def _depends_on_itself(config: dict[str, Any], _value: Any) -> None:
    task = config["tasks"][-1]
    task["depends"] = [*task.get("depends", []), task["name"]]


def _no_task(config: dict[str, Any], value: Any) -> None:
    config["tasks"][0]["depends"] = ["nowhere", 99, value]


def _duplicate_task(config: dict[str, Any], _value: Any) -> None:
    config["tasks"].append(dict(config["tasks"][0]))


BREAKAGES = [
    (_bad_name, bad_task_names),
    (_bad_amount, bad_amounts),
    (_bad_iterations, bad_amounts),
    (_depends_on_itself, st.none()),
    (_no_task, values),
    (_duplicate_task, st.none()),
]


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A config shaped like a real one, broken in a few places (or in none)."""
    names = draw(st.lists(task_names, min_size=1, max_size=4, unique=True))
    config: dict[str, Any] = {
        "steering": {"parameters": {"p": 1, "q": "x", **draw(parameters)}},
        "tasks": [draw(tasks(names)) for _ in names],
    }
    for task, name in zip(config["tasks"], names, strict=True):
        task["name"] = name  # unique, until a breakage duplicates one
    if draw(st.booleans()):
        config["options"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "max_failures": st.integers(min_value=1, max_value=5) | bad_amounts,
                    "debug": st.booleans() | values,
                    "timeouts": st.dictionaries(
                        st.sampled_from(["queued", "heartbeat", "lunch"]),
                        st.sampled_from(["30m", "2h", 90, "soon", -1])),
                },
            )
        )  # fmt: skip
    if draw(st.booleans()):
        config["steering"]["system"] = draw(
            st.dictionaries(st.text(_plain, max_size=4), values, max_size=2)
        )
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        breakage, strategy = draw(st.sampled_from(BREAKAGES))
        breakage(config, draw(strategy))
    if draw(st.integers(min_value=0, max_value=5)) == 0:  # one string no config can hold
        stopper = draw(st.sampled_from(_STOPPERS) | st.text(max_size=4))
        task = config["tasks"][0]
        where, key = draw(st.sampled_from([(config, "description"), (task, "name"),
                                           (config["steering"]["parameters"], stopper),
                                           (task["trays"][0]["modules"][0], "name")]))  # fmt: skip
        where[key] = stopper
    if draw(st.integers(min_value=0, max_value=3)) == 0:  # keys no model knows
        where = draw(st.sampled_from([config, config["steering"], config["tasks"][0]]))
        where[draw(st.sampled_from(["surprise", "taks", "src", "__class__", "\u202e"]))] = 1
    if draw(st.integers(min_value=0, max_value=3)) == 0:  # a value of the wrong kind
        where, key = draw(st.sampled_from(_places(config)))
        where[key] = draw(values)
    return config


def to_json(config: Any) -> str:
    """JSON as Python writes it (``NaN`` and lone surrogates included)."""
    return json.dumps(config)


def to_yaml(config: Any) -> str:
    """YAML, or JSON (which YAML reads) where YAML cannot write a value."""
    try:
        return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, UnicodeEncodeError):
        return to_json(config)


#: Text that is almost a config: a rendered config with a few characters changed.
@st.composite
def config_texts(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from([to_json, to_yaml]))(draw(configs()))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        cut = draw(st.integers(min_value=0, max_value=3))
        noise = draw(st.sampled_from(["", ":", "- ", "{", "&a ", "*a", "\t", "!!x ", "? "]))
        text = text[:at] + noise + text[at + cut :]
    return text
