"""The Module base class: parameter declarations, validation, typed views; the registry."""

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from frazil.pilot.modules import (
    REQUIRED,
    CopyFiles,
    MakeTarball,
    Module,
    ModuleError,
    Param,
    ParameterError,
    RunScript,
    UnpackTarball,
    find_module_class,
)
from tests.pilot.sample_modules import Greeter


class Filter(Module):
    parameters: ClassVar[Mapping[str, Param]] = {
        "input": Param(REQUIRED, "file to read"),
        "cut": Param(0.5, "minimum energy"),
        "tags": Param([], "labels"),
    }


class StrictFilter(Filter):
    parameters: ClassVar[Mapping[str, Param]] = {
        "cut": Param(2.0, "a higher minimum"),
        "veto": Param(False, "apply the veto"),
    }


def test_defaults_fill_in_and_given_values_win() -> None:
    module = Filter({"input": "a.i3", "cut": 1})
    assert module.params == {"input": "a.i3", "cut": 1, "tags": []}
    assert module.param_float("cut") == 1.0
    assert module.name == "Filter"


def test_mutable_defaults_are_not_shared() -> None:
    first = Filter({"input": "a"})
    first.params["tags"].append("x")  # type: ignore[attr-defined]
    assert Filter({"input": "b"}).params["tags"] == []


def test_unknown_parameters_are_named() -> None:
    with pytest.raises(ParameterError) as caught:
        Filter({"input": "a", "cutt": 1}, name="filter-tray")
    message = str(caught.value)
    assert "filter-tray" in message
    assert "cutt" in message
    assert "known: cut, input, tags" in message


def test_missing_required_parameters_are_named() -> None:
    with pytest.raises(ParameterError, match=r"module Filter: missing required parameter.* input"):
        Filter({"cut": 1})


def test_parameters_are_inherited_and_may_be_redeclared() -> None:
    assert set(StrictFilter.all_parameters()) == {"input", "cut", "tags", "veto"}
    module = StrictFilter({"input": "a"})
    assert module.param_float("cut") == 2.0
    assert module.param_bool("veto") is False
    assert Filter.all_parameters()["cut"].default == 0.5


def test_declarations_must_be_params() -> None:
    with pytest.raises(TypeError, match=r"Bad.parameters\['x'\] must be a Param"):

        class Bad(Module):
            parameters: ClassVar[Mapping[str, Param]] = {"x": 1}  # type: ignore[dict-item]


def test_typed_views_check_types() -> None:
    module = Filter({"input": {"not": "a string"}, "cut": "high", "tags": "a b"})
    with pytest.raises(ParameterError, match="parameter input must be a string"):
        module.param_str("input")
    with pytest.raises(ParameterError, match="parameter cut must be a number"):
        module.param_float("cut")
    assert module.param_strs("tags") == ["a b"]
    assert module.param_strs("tags", split=True) == ["a", "b"]
    with pytest.raises(ParameterError, match="true or false"):
        module.param_bool("cut")
    with pytest.raises(ParameterError, match="mapping"):
        module.param_mapping("tags")


def test_the_base_run_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        Filter({"input": "a"}).run({})


def test_run_adds_to_stats() -> None:
    stats: dict[str, float] = {"earlier": 1.0}
    Greeter({"name": "world"}).run(stats)
    assert stats == {"earlier": 1.0, "letters": 10.0}


def test_paths_are_taken_from_the_workdir(tmp_path: Path) -> None:
    module = Filter({"input": "a"}, workdir=tmp_path)
    assert module.path("x/y") == tmp_path / "x" / "y"
    assert module.path("/abs") == Path("/abs")


@pytest.mark.parametrize("cls", [CopyFiles, MakeTarball, UnpackTarball, RunScript])
def test_builtins_are_found_by_name(cls: type[Module]) -> None:
    assert find_module_class(cls.__name__) is cls


@pytest.mark.parametrize(
    "name",
    [
        "tests.pilot.sample_modules:Greeter",
        "tests.pilot.sample_modules.Greeter",
        " tests.pilot.sample_modules:Greeter ",
    ],
)
def test_dotted_paths_are_imported(name: str) -> None:
    found = find_module_class(name)
    assert found.__name__ == "Greeter"
    assert issubclass(found, Module)


def test_nested_classes_with_a_colon() -> None:
    assert find_module_class("tests.pilot.sample_modules:Outer.Inner").__name__ == "Inner"


def test_builtins_by_dotted_path() -> None:
    assert find_module_class("frazil.pilot.modules:CopyFiles") is CopyFiles


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("tests.pilot.sample_modules:NotAModule", "not a subclass of Module"),
        ("tests.pilot.sample_modules:not_a_class", "not a subclass of Module"),
        ("frazil.pilot.modules:Module", "not a subclass of Module"),
        ("tests.pilot.sample_modules:Missing", "has no Missing"),
        ("no_such_package.mod:Thing", "cannot import 'no_such_package.mod'"),
        ("CopyFile", "not a built-in module \\(CopyFiles, MakeTarball"),
        ("os.path:join", "not a subclass of Module"),
    ],
)
def test_bad_names_are_refused_clearly(name: str, match: str) -> None:
    with pytest.raises(ModuleError, match=match):
        find_module_class(name)


@pytest.mark.parametrize(
    ("cls", "params", "match"),
    [
        (RunScript, {"script": "a.py", "args": {"a": 1}}, "parameter args must be a string or"),
        (RunScript, {"script": "a.py", "timeout": "soon"}, "parameter timeout must be a number"),
        (RunScript, {"script": "a.py", "env": ["A=1"]}, "parameter env must be a mapping"),
        (CopyFiles, {"files": {"a": 1}, "dest": "x"}, "parameter files must be a string or"),
        (UnpackTarball, {"tarball": ["a", "b"]}, "parameter tarball must be a string"),
    ],
)
def test_builtins_check_types_when_built(
    cls: type[Module], params: dict[str, object], match: str
) -> None:
    with pytest.raises(ParameterError, match=match):
        cls(params)
