from frazil.model.spec import DatasetConfig
from frazil.model.validate import check_config


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
