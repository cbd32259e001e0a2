import pytest

from frazil.loader import inspect_text
from frazil.model.budget import Budget
from frazil.model.spec import DatasetConfig
from frazil.model.validate import Limits, Plan, check_config


def cfg(steering=None, module=None, task=None):
    t = {"name": "t", "trays": [{"modules": [{"src": "x.sh", **(module or {})}]}], **(task or {})}
    return DatasetConfig.model_validate({"steering": steering or {}, "tasks": [t]})


def test_site_values_are_warnings_not_errors():
    report = check_config(cfg(module={"args": "--tables $system(photon_tables)"}))
    assert report.ok
    assert report.warnings == []  # a placeholder is fine where it is only text
    report = check_config(cfg(module={"args": "$eval($system(ncpu) + 1)"}))
    assert report.ok
    assert [w.path for w in report.warnings] == ["tasks[0].trays[0].modules[0].args"]
    assert "only known at run time" in report.warnings[0].message


def test_parameters_may_rely_on_an_inner_scope():
    report = check_config(
        cfg(
            steering={"parameters": {"out": "file_$(module_tag).i3"}},
            module={"args": "$steering(out)", "parameters": {"module_tag": "a"}},
        )
    )
    assert report.ok
    assert [(w.path, w.severity) for w in report.warnings] == [
        ("steering.parameters.out", "warning")
    ]


def test_a_broken_parameter_is_an_error_where_it_is_used():
    report = check_config(
        cfg(
            steering={"parameters": {"out": "$steering(missing)"}},
            module={"args": "$steering(out)"},
        )
    )
    assert [p.path for p in report.errors] == ["tasks[0].trays[0].modules[0].args"]


def test_evaluated_requirements_are_type_checked():
    report = check_config(
        cfg(
            task={"requirements": {"cpu": "$steering(n)", "memory": "$eval(-1)", "os": "$eval(3)"}},
            steering={"parameters": {"n": "four"}},
        )
    )
    assert {p.path for p in report.errors} == {
        "tasks[0].requirements.cpu",
        "tasks[0].requirements.memory",
        "tasks[0].requirements.os",
    }


def test_iterations_must_evaluate_to_a_sane_count():
    report = check_config(
        cfg(task={"trays": [{"iterations": "$eval(10**9)", "modules": [{"src": "x"}]}]})
    )
    assert [p.path for p in report.errors] == ["tasks[0].trays[0].iterations"]


def classy(**module):
    return cfg(module={"src": "", **module})


def test_a_class_module_takes_parameters_never_args():
    for args in ("--n 3", ["3"], {"n": 3}):
        report = check_config(classy(**{"class": "pkg.mod:Count", "args": args}))
        assert [p.path for p in report.errors] == ["tasks[0].trays[0].modules[0].args"]
        assert "takes 'parameters', not 'args'" in report.errors[0].message
    assert check_config(classy(**{"class": "pkg.mod:Count", "parameters": {"n": 3}})).ok


def test_a_built_in_class_gets_its_required_parameters_and_no_others():
    report = check_config(classy(**{"class": "CopyFiles", "parameters": {"files": ["a"]}}))
    assert [(p.path, p.message) for p in report.errors] == [(
        "tasks[0].trays[0].modules[0].parameters",
        "CopyFiles needs parameter(s): dest (directory to copy them into (created if needed))",
    )]  # fmt: skip
    report = check_config(classy(**{"class": "UnpackTarball", "parameters": {"tarbal": "x"}}))
    assert [p.message for p in report.errors] == [
        "UnpackTarball needs parameter(s): tarball (the tarball (any compression tarfile reads))",
        "UnpackTarball takes no parameter(s) tarbal; it takes tarball, dest",
    ]
    given = {"script": "run.sh", "args": "$args(job)"}  # RunScript's own parameter "args"
    assert check_config(classy(**{"class": "RunScript", "parameters": given})).ok


def test_a_class_name_that_is_neither_built_in_nor_a_dotted_path_is_an_error():
    report = check_config(classy(**{"class": "CopyFile"}))
    assert [p.path for p in report.errors] == ["tasks[0].trays[0].modules[0].class"]
    assert "not a built-in (CopyFiles, " in report.errors[0].message


def _ticking(step):
    """A clock that moves ``step`` seconds each time it is read."""
    now = [0.0]

    def clock():
        now[0] += step
        return now[0]

    return clock


def test_a_check_over_budget_stops_where_it_was_with_the_budget_named():
    text = "tasks:\n  - name: t\n    trays:\n      - modules:\n" + "".join(
        f"          - {{src: x, args: '$eval({i} + 1)'}}\n" for i in range(50)
    )
    budget = Budget(5.0, _ticking(0.1), "5 s of CPU time ([validation] cpu_seconds)")
    report = inspect_text(text, "many.yaml", plan=Plan(budget=budget)).report
    (problem,) = report.errors
    assert "used up its budget of 5 s of CPU time ([validation] cpu_seconds)" in problem.message
    assert "while checking job 0" in problem.message
    assert problem.path.startswith("tasks[0].trays[0].modules[")
    module = int(problem.path.split("modules[")[1].split("]")[0])
    assert problem.line == 5 + module  # the module's own line


@pytest.mark.parametrize(
    ("limits", "what"),
    [
        (Limits(tasks=2), "3 tasks; a config may have at most 2 ([validation] max_tasks)"),
        (Limits(modules=5), "6 modules; a config may have at most 5 ([validation] max_modules)"),
        (
            Limits(expressions=3),
            "6 expressions; a config may have at most 3 ([validation] max_expressions)",
        ),
    ],
)
def test_configs_larger_than_the_limits_are_refused_before_they_are_evaluated(limits, what):
    config = DatasetConfig.model_validate(
        {
            "tasks": [
                {"name": n, "trays": [{"modules": [{"src": "x", "args": "$args(job)"}] * 2}]}
                for n in "abc"
            ]
        }
    )
    assert check_config(config).ok
    report = check_config(config, plan=Plan(limits=limits))
    assert [p.message for p in report.errors] == [what]
