"""Which paths of a config are local files, and how a resolved task gets the uploaded ones."""

from frazil.model.resolve import resolve_task
from frazil.model.spec import DatasetConfig
from frazil.model.uploads import Kind, climbs_out, local_path, pin, references

SHA = "a" * 64
CONFIG = DatasetConfig.model_validate({
    "steering": {"system": {"software": "sim"}},
    "tasks": [{
        "name": "t",
        "data": [
            {"remote": "gcd/g.json", "movement": "input"},
            {"remote": "/site/abs.json", "movement": "input"},
            {"remote": "out.json", "movement": "output"},
        ],
        "trays": [{"modules": [
            {"src": "$system(software)/gen.py"},
            {"src": "echo"},
            {"class": "m.C", "url": "code.tar.gz"},
            {"src": "https://example.org/x.py"},
        ]}],
    }],
})  # fmt: skip


def test_local_paths_are_relative_and_plain() -> None:
    assert local_path("./a/../b.py") == "b.py"
    assert local_path("/abs.py") is None
    assert local_path("https://x/y.py") is None
    assert local_path("$system(x)/y") is None
    assert local_path(".") is None


def test_references_name_scripts_code_and_inputs_where_they_are() -> None:
    refs = {r.path: r for r in references(CONFIG)}
    assert sorted(refs) == ["code.tar.gz", "echo", "gcd/g.json", "sim/gen.py"]
    assert refs["sim/gen.py"].kind is Kind.SCRIPT and not refs["sim/gen.py"].literal
    assert refs["code.tar.gz"].where == "tasks[0].trays[0].modules[2].url"
    assert refs["code.tar.gz"].surely_a_file
    assert not refs["echo"].surely_a_file  # a program on the site's PATH
    assert not refs["gcd/g.json"].surely_a_file  # or a file in the site's data


def test_a_path_climbing_out_is_a_problem() -> None:
    (ref,) = references(DatasetConfig.model_validate(
        {"tasks": [{"name": "t", "trays": [{"modules": [{"src": "../x.py"}]}]}]}
    ))  # fmt: skip
    problem = climbs_out(ref)
    assert problem is not None and problem.path == "tasks[0].trays[0].modules[0].src"


def test_pin_puts_uploaded_files_in_place_of_their_paths() -> None:
    spec = resolve_task(CONFIG, 0)
    pinned = pin(spec, {"sim/gen.py": SHA, "code.tar.gz": SHA, "gcd/g.json": SHA})
    modules = pinned.trays[0].modules
    assert modules[0].src == f"frazil-blob:{SHA}/gen.py"
    assert modules[1].src == "echo"
    assert modules[2].url == f"frazil-blob:{SHA}/code.tar.gz"
    assert modules[3].src == "https://example.org/x.py"
    assert pinned.data[0].remote == f"frazil-blob:{SHA}/g.json"
    assert pinned.data[0].checksum == f"sha256:{SHA}"
    assert pinned.data[1:] == spec.data[1:]
    assert pin(spec, {}) is spec
