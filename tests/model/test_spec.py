import json
import math

import pytest
from pydantic import ValidationError

from frazil.model.spec import DatasetConfig, Module, Requirements, Tray


def minimal(**task):
    base = {"name": "t", "trays": [{"modules": [{"src": "run.sh"}]}]}
    base.update(task)
    return {"tasks": [base]}


def test_defaults_follow_iceprod():
    cfg = DatasetConfig.model_validate(minimal())
    assert cfg.version == 3.1
    req = cfg.tasks[0].requirements
    assert (req.cpu, req.gpu, req.memory, req.disk, req.time) == (1, 0, 1.0, 1.0, 1.0)
    module = cfg.tasks[0].trays[0].modules[0]
    assert module.env_clear is True and module.args == ""
    assert cfg.tasks[0].trays[0].iterations == 1


def test_an_iceprod3_style_config_loads_as_is():
    cfg = DatasetConfig.model_validate(
        {
            "version": 3.1,
            "dataset": 20904,
            "description": "old dataset",
            "options": {"anything": [1, 2]},
            "steering": {
                "parameters": {"a": 1},
                "batchsys": {"condor": {"requirements": "x"}},
                "data": [],
            },
            "tasks": [
                {
                    "name": "generate",
                    "depends": [],
                    "task_files": False,
                    "container": "/cvmfs/x.sif",
                    "requirements": {"cpu": 1, "memory": 1.5, "gpu": 0, "os": ["RHEL_7_x86_64"]},
                    "data": [
                        {"remote": "gsiftp://x/y.i3", "movement": "output", "transfer": "maybe"}
                    ],
                    "trays": [
                        {
                            "name": "t",
                            "iterations": 1,
                            "modules": [
                                {
                                    "name": "m",
                                    "src": "sim.py",
                                    "args": {"nevents": "$steering(a)"},
                                    "env_shell": "/cvmfs/env.sh",
                                    "env_clear": True,
                                    "configs": {"cfg.json": "$steering(a)"},
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    )
    assert cfg.tasks[0].data[0].transfer == "maybe"
    assert cfg.tasks[0].requirements.os == ["RHEL_7_x86_64"]


def test_module_class_alias_and_exactly_one_of_src_class():
    m = Module.model_validate({"class": "icecube.Sim", "url": "https://git/x"})
    assert m.class_ == "icecube.Sim"
    assert m.model_dump(by_alias=True)["class"] == "icecube.Sim"
    for bad in ({}, {"src": "a.sh", "class": "X"}, {"src": "a.sh", "url": "https://x"}):
        with pytest.raises(ValidationError):
            Module.model_validate(bad)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("cpu", 2, 2),
        ("cpu", "4", 4),
        ("cpu", 2.0, 2),
        ("cpu", "$eval(1+1)", "$eval(1+1)"),
        ("memory", "2.5", 2.5),
        ("time", 3, 3),
    ],
)
def test_requirements_accept_numbers_numeric_strings_and_expressions(field, value, expected):
    assert getattr(Requirements.model_validate({field: value}), field) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [("cpu", 1.5), ("cpu", -1), ("gpu", True), ("memory", "lots"), ("time", None),
     ("cpu", 2**40), ("gpu", "1e7"), ("memory", 1e300), ("disk", "1e400"), ("time", math.inf)],
)  # fmt: skip
def test_requirements_reject_the_rest(field, value):
    with pytest.raises(ValidationError):
        Requirements.model_validate({field: value})


def test_requirement_numbers_are_refused_past_their_range_with_the_field_named():
    with pytest.raises(ValidationError, match="cpu must be a whole number from 0 to 1000000, got"):
        Requirements.model_validate({"cpu": 2**1100})
    with pytest.raises(ValidationError, match="iterations must be a whole number from 1 to 100000"):
        Tray.model_validate({"iterations": 10**6, "modules": [{"src": "x.sh"}]})


def test_requirements_keep_site_attributes():
    req = Requirements.model_validate({"cpu": 1, "cvmfs": True, "arch": "x86_64"})
    assert req.model_extra == {"cvmfs": True, "arch": "x86_64"}


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"local": "x", "type": "permanent"},
        {"remote": "x", "transfer": "perhaps"},
        {"remote": "x", "movement": "sideways"},
    ],
)
def test_bad_data_entries(data):
    with pytest.raises(ValidationError):
        DatasetConfig.model_validate(minimal(data=[data]))


@pytest.mark.parametrize("name", ["", "../etc", "a b", "x" * 101, "-lead", "ok/no"])
def test_task_names_are_plain(name):
    with pytest.raises(ValidationError, match="task name"):
        DatasetConfig.model_validate(minimal(name=name))


def test_unknown_keys_are_refused_everywhere_but_free_maps():
    DatasetConfig.model_validate(
        minimal(parameters={"any": {"thing": 1}}, batchsys={"slurm": {"x": 1}})
    )
    for where in ({"trays": [{"modules": [{"src": "a"}], "loops": 2}]}, {"needs": {}}):
        with pytest.raises(ValidationError, match="Extra inputs"):
            DatasetConfig.model_validate(minimal(**where))


def test_json_schema_describes_the_config():
    schema = DatasetConfig.model_json_schema(by_alias=True)
    json.dumps(schema)
    assert schema["title"] == "Frazil dataset config"
    assert "tasks" in schema["required"]
    module = schema["$defs"]["Module"]
    assert "class" in module["properties"] and module["additionalProperties"] is False
