"""Reading configs: every problem with its path and line; broken copies of the example."""

import json

import pytest
import yaml

from frazil.errors import ConfigError
from frazil.loader import inspect_file, inspect_text, load_config
from tests.conftest import EXAMPLE


def test_the_example_is_valid():
    inspection = inspect_file(EXAMPLE)
    assert inspection.report.problems == ()
    assert inspection.config is not None
    assert [t.name for t in inspection.config.tasks] == [
        "corsika",
        "nugen",
        "photon_propagation",
        "detector_2016",
        "detector_2020",
        "level2",
    ]
    assert inspection.report.expressions > 40


def _line_of(text: str, needle: str | tuple[str, int]) -> int:
    """The line holding ``needle`` (or its n-th occurrence, given ``(needle, n)``)."""
    needle, nth = needle if isinstance(needle, tuple) else (needle, 1)
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            nth -= 1
            if nth == 0:
                return number
    raise AssertionError(needle)


BROKEN = [
    # (what to replace, replacement, expected path, text on the expected line, message part)
    (
        "nevents: '$steering(nevents)'\n              seed: '$steering(seed)'",
        "nevents: '$steering(nevent)'\n              seed: '$steering(seed)'",
        "tasks[0].trays[0].modules[0].args.nevents",
        "nevents: '$steering(nevent)'",
        "no steering value 'nevent'",
    ),
    (
        "    depends: [corsika, nugen]",
        "    depends: [corsika, nugen, level2]",
        "tasks[2].depends",
        "depends: [corsika, nugen, level2]",
        "dependency cycle: photon_propagation -> level2 -> detector_2016 -> photon_propagation",
    ),
    (
        "    depends: [detector_2016, detector_2020]",
        "    depends: [detector_2016, detector_2030]",
        "tasks[5].depends[1]",
        "depends: [detector_2016, detector_2030]",
        "no task named 'detector_2030'",
    ),
    (
        "  - name: detector_2020",
        "  - name: detector_2016",
        "tasks[4].name",
        ("  - name: detector_2016", 2),
        "duplicate task name 'detector_2016'",
    ),
    (
        "          - name: clsim\n",
        "          - name: clsim\n            sr: x\n",
        "tasks[2].trays[0].modules[0].sr",
        "sr: x",
        "did you mean 'src'?",
    ),
    (
        "time: '$eval(0.5 + $steering(nevents) / 4000)'",
        "time: '$eval(0.5 + $steering(nevents) / 4000'",
        "tasks[2].requirements.time",
        "time: '$eval(0.5 + $steering(nevents) / 4000'",
        "unclosed '('",
    ),
    (
        "requirements: {cpu: 1, memory: 2.0, disk: 2.0, time: 2.0}",
        "requirements: {cpu: many, memory: 2.0, disk: 2.0, time: 2.0}",
        "tasks[0].requirements.cpu",
        "requirements: {cpu: many",
        "cpu must be a number or an expression",
    ),
    (
        "        iterations: '$steering(nugen)[iterations]'",
        "        iterations: '$steering(nugen)[iteration]'",
        "tasks[1].trays[0].iterations",
        "iterations: '$steering(nugen)[iteration]'",
        "no key 'iteration'",
    ),
    (
        "      gpu: 1\n",
        "      gpu: '$eval(1/2)'\n",
        "tasks[2].requirements.gpu",
        "gpu: '$eval(1/2)'",
        "must be a whole number",
    ),
    (
        "        type: job_temp\n        movement: output\n",
        "        type: job_temporary\n        movement: output\n",
        "tasks[0].data[0].type",
        "type: job_temporary",
        "Input should be 'permanent', 'job_temp', 'dataset_temp' or 'site_temp'",
    ),
    (
        "  max_failures: 3",
        "  max_failures: 0",
        "options.max_failures",
        "max_failures: 0",
        "must be a whole number from 1 to 1000",
    ),
    (
        "min_hits: 12",
        "min_hits: 12\n          min_hits: 13",
        "tasks[5].trays[0].parameters.min_hits",
        "min_hits: 13",
        "duplicate key 'min_hits'",
    ),
    (
        "    seed: '$eval($args(dataset) * 100000 + $args(job))'",
        "    seed: '$eval($args(dataset) * 100000 + $args(jobb))'",
        "tasks[0].trays[0].modules[0].args.seed",
        "seed: '$steering(seed)'",
        "no args value 'jobb'",
    ),
    (
        "    jobtag: '$sprintf(\"%06d\", $args(job))'",
        "    jobtag: '$sprintf(\"%06d\", $steering(outdir))'\n    outdir2: x",
        "steering.parameters.jobtag",
        "jobtag:",
        "reference cycle",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "line_text", "message"), BROKEN)
def test_broken_copies_fail_with_located_errors(example_text, old, new, path, line_text, message):
    assert old in example_text
    text = example_text.replace(old, new, 1)
    report = inspect_text(text, "broken.yaml").report
    assert not report.ok
    matching = [p for p in report.errors if p.path == path]
    assert matching, [str(p) for p in report.errors]
    assert any(message in p.message for p in matching), [p.message for p in matching]
    assert matching[0].line == _line_of(text, line_text)


def test_every_problem_is_reported_in_one_run(example_text):
    text = example_text
    for old, new, *_ in (BROKEN[0], BROKEN[1], BROKEN[4], BROKEN[5]):
        text = text.replace(old, new, 1)
    paths = {p.path for p in inspect_text(text, "broken.yaml").report.errors}
    assert {
        "tasks[0].trays[0].modules[0].args.nevents",
        "tasks[2].depends",
        "tasks[2].trays[0].modules[0].sr",
        "tasks[2].requirements.time",
    } <= paths


def test_json_configs_read_the_same(example_text, tmp_path):
    data = yaml.safe_load(example_text)
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(data, indent=2))
    config = load_config(path)
    assert config == load_config(EXAMPLE)
    data["tasks"][1]["depends"] = ["nothing"]
    path.write_text(json.dumps(data, indent=2))
    errors = inspect_file(path).report.errors
    assert [(p.path, p.line) for p in errors] == [
        ("tasks[1].depends[0]", _line_of(path.read_text(), '"nothing"'))
    ]


def test_a_json_config_is_read_as_yaml_only_for_the_lines_of_its_problems(
    example_text, monkeypatch
):
    data = yaml.safe_load(example_text)
    composed = []
    real = yaml.compose
    monkeypatch.setattr(yaml, "compose", lambda *a, **k: composed.append(1) or real(*a, **k))
    report = inspect_text(json.dumps(data, indent=2), "sim.json").report
    assert report.ok and composed == []  # nothing to locate: never composed
    text = json.dumps(data, indent=2).replace('"tasks": [', '"description": "again",\n"tasks": [')
    report = inspect_text(text, "sim.json").report
    (problem,) = report.errors
    assert "duplicate key 'description'" in problem.message and composed == [1]
    assert problem.line == _line_of(text, '"description": "again"')


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("tasks: [\n  {name: a\n", "YAML syntax error", 3),
        ("- just\n- a list\n", "must be a mapping at the top level", 1),
        ('{"tasks": [}', "JSON syntax error", 1),
        ("description: x\n", "required key is missing", None),
        ("tasks: []\n", "List should have at least 1 item", 1),
    ],
)
def test_unreadable_or_empty_configs(text, message, line):
    report = inspect_text(text, "x.json" if text.startswith("{") else "x.yaml").report
    assert not report.ok
    assert message in report.errors[0].message
    assert report.errors[0].line == line


def test_load_config_raises_with_every_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "tasks:\n  - name: a\n    depends: [b]\n    trays: [{modules: [{src: x.sh}]}]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [p.path for p in info.value.problems] == ["tasks[0].depends[0]"]
    assert "bad.yaml" in str(info.value) and "line 3" in str(info.value)


def test_unreadable_file_is_a_problem_not_a_crash(tmp_path):
    report = inspect_file(tmp_path / "missing.yaml").report
    assert "cannot read the file" in report.errors[0].message
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "cannot read the file" in inspect_file(binary).report.errors[0].message


LOCAL = """\
steering:
  system: {code: scripts}
tasks:
  - name: a
    data: [{remote: 'file:///data/brought.sh', local: brought.sh}]
    trays:
      - modules:
          - {name: here, src: scripts/run.py}
          - {name: absolute, src: /usr/bin/true}
          - {name: brought, src: brought.sh}
          - {name: written, src: made.sh, configs: {made.sh: 'echo hi'}}
          - {name: on-path, src: python3}
          - {name: shell, src: /usr/bin/env, env_shell: scripts/setup.sh}
          - {name: viasystem, src: '$system(code)/run.py'}
          - {name: sitesystem, src: '$system(site_code)/run.py'}
"""


def test_relative_paths_a_pilot_must_read_that_lie_here_are_warnings(tmp_path):
    for name in ("scripts/run.py", "scripts/setup.sh", "brought.sh", "made.sh"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    path = tmp_path / "c.yaml"
    path.write_text(LOCAL)
    assert inspect_file(path).report.problems == ()  # without a machine to look on: nothing
    report = inspect_file(path, here=(tmp_path,)).report
    assert report.ok
    assert [(p.path, p.line, p.severity) for p in report.problems] == [
        ("tasks[0].trays[0].modules[0].src", _line_of(LOCAL, "name: here"), "warning"),
        ("tasks[0].trays[0].modules[5].env_shell", _line_of(LOCAL, "name: shell"), "warning"),
        ("steering.system.code", _line_of(LOCAL, "system: {code"), "warning"),
    ]
    src, shell, system = (p.message for p in report.problems)
    assert src == (
        f"module 'here': 'scripts/run.py' is a relative path that resolves on this machine only "
        f"({tmp_path / 'scripts/run.py'}): the site will not see it; use an absolute path the "
        "site's nodes see, a URL, or a $system value the site sets"
    )
    assert shell.startswith("module 'shell': 'scripts/setup.sh' is a relative path")
    assert system == (
        "'scripts' is a relative path that resolves on this machine only: the site will not "
        "see it, and the modules viasystem run from it; a site must set [system] code to a "
        "path its nodes see"
    )


def test_the_example_needs_a_sites_software(tmp_path):
    (problem,) = inspect_file(EXAMPLE, here=(EXAMPLE.parent, EXAMPLE.parent.parent)).report.problems
    assert (problem.path, problem.severity) == ("steering.system.software", "warning")
    assert problem.line == _line_of(EXAMPLE.read_text(), "software: examples/simulation")
    assert "generate_corsika, generate_nugen, merge_halves, clsim and 2 more" in problem.message
    assert inspect_file(EXAMPLE, here=(tmp_path,)).report.problems == ()  # not found there
