import pytest

from frazil.errors import (
    ConfigError,
    ExpressionError,
    JobSpecError,
    SiteSpecError,
    UnresolvedReference,
)
from frazil.loader import load_config
from frazil.model.resolve import (
    JobInfo,
    Resolver,
    args_to_argv,
    resolve_at_site,
    resolve_job,
    resolve_task,
)
from frazil.model.rng import job_seed
from frazil.model.spec import DatasetConfig
from frazil.wire import encode
from tests.conftest import EXAMPLE


@pytest.fixture(scope="module")
def sim():
    return load_config(EXAMPLE)


def test_job_options_and_padding(sim):
    task = resolve_task(sim, "level2", JobInfo(dataset=21000, job=3, jobs_submitted=10))
    out = next(d for d in task.data if d.movement.value == "output")
    assert out.remote == "file:///tmp/frazil-sim/storage/21000/000003/level2_000003.jsonl"
    assert out.local == "level2.jsonl"


def test_site_system_values_override_the_config(sim):
    info = JobInfo(job=1, system={"storage": "gsiftp://gridftp.icecube.wisc.edu/data/sim"})
    task = resolve_task(sim, "level2", info)
    assert task.data[-1].remote.startswith("gsiftp://gridftp.icecube.wisc.edu/data/sim/0/000001/")


def test_tray_iterations_expand_with_iter(sim):
    task = resolve_task(sim, "nugen", JobInfo(job=5))
    signal = [t for t in task.trays if t.name == "signal"]
    assert [t.iteration for t in signal] == [0, 1]
    outputs = [m.argv[-1] for t in signal for m in t.modules]
    assert outputs == ["--output=nugen_0.jsonl", "--output=nugen_1.jsonl"]
    assert "--nevents=1000" in signal[0].modules[0].argv  # task parameter from steering


def test_requirements_are_evaluated(sim):
    task = resolve_task(sim, "photon_propagation", JobInfo())
    assert task.requirements.gpu == 1 and task.requirements.time == 1.0
    assert task.depends == ("corsika", "nugen")


def test_task_scope_parameters_reach_modules_and_data(sim):
    task = resolve_task(sim, "detector_2020", JobInfo(job=2))
    assert "--gcd=GeoCalibDetectorStatus_IC86.2020.json" in task.trays[0].modules[0].argv
    assert any(d.remote.endswith("GeoCalibDetectorStatus_IC86.2020.json") for d in task.data)


def test_choice_depends_on_job_and_seed_only(sim):
    def ice(job, seed):
        task = resolve_task(sim, "photon_propagation", JobInfo(job=job, dataset_seed=seed))
        argv = task.trays[0].modules[0].argv
        return argv[argv.index("--ice-model") + 1]

    picks = {ice(job, 0) for job in range(20)}
    assert picks == {"spice_3.2.1", "spice_bfr-v2"}
    assert [ice(j, 7) for j in range(10)] == [ice(j, 7) for j in range(10)]


def test_resolve_job_is_in_dependency_order_and_serialisable(sim):
    import json

    tasks = resolve_job(sim, JobInfo(job=0))
    names = [t.name for t in tasks]
    assert names.index("photon_propagation") > names.index("nugen")
    assert names[-1] == "level2"
    json.dumps([encode(t) for t in tasks])


def test_job_seed_is_stable_and_spread():
    assert job_seed(1, 2) == job_seed(1, 2)
    seeds = {job_seed(42, j) for j in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
    assert job_seed(1, 2) != job_seed(2, 1)


@pytest.mark.parametrize(
    ("args", "argv"),
    [
        ("--a 1 'two words'", ["--a", "1", "two words"]),
        ([1, "x y", 2.5], ["1", "x y", "2.5"]),
        (
            {"n": 5, "flag": True, "off": False, "none": None, "l": [1]},
            ["--n=5", "--flag", "--l=[1]"],
        ),
    ],
)
def test_args_to_argv(args, argv):
    assert args_to_argv(args) == argv


def test_args_with_unbalanced_quotes_are_an_error():
    with pytest.raises(ExpressionError, match="cannot be split"):
        args_to_argv("--a 'open")


def _config(**module):
    return DatasetConfig.model_validate(
        {
            "steering": {"parameters": {"p": "$steering(q)", "q": 1}},
            "tasks": [{"name": "t", "trays": [{"modules": [{"src": "x.sh", **module}]}]}],
        }
    )


def test_strict_errors_carry_the_path():
    with pytest.raises(UnresolvedReference) as info:
        resolve_task(_config(args="$steering(nope)"), 0)
    assert info.value.path == "tasks[0].trays[0].modules[0].args"
    assert str(info.value).startswith("tasks[0].trays[0].modules[0].args: no steering value")


def test_lenient_mode_keeps_text():
    task = resolve_task(_config(args="--x $steering(nope)"), 0, JobInfo(strict=False))
    assert task.trays[0].modules[0].argv == ("--x", "$steering(nope)")


def test_collecting_mode_records_and_continues():
    problems = []
    cfg = _config(args="$steering(nope)", src="$eval(1/0)")
    Resolver(cfg, JobInfo(), problems).task(0)
    assert {p.path for p in problems} == {
        "tasks[0].trays[0].modules[0].args",
        "tasks[0].trays[0].modules[0].src",
    }


def test_resolve_job_refuses_a_cyclic_config():
    cfg = DatasetConfig.model_validate(
        {
            "tasks": [
                {"name": "a", "depends": ["b"], "trays": [{"modules": [{"src": "x"}]}]},
                {"name": "b", "depends": ["a"], "trays": [{"modules": [{"src": "x"}]}]},
            ]
        }
    )
    with pytest.raises(ConfigError, match="dependency cycle"):
        resolve_job(cfg)


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        ({"cpu": "$eval(2**1100)"}, "cpu: must be a whole number from 0 to 1000000, got a 1101-bit "
                                    "number"),
        ({"gpu": "$eval(2**40)"}, "gpu: must be a whole number from 0 to 1000000, got "
                                  "1099511627776"),
        ({"memory": "$eval(1e300)"}, "memory: must be a number from 0 to 1000000000, got 1e+300"),
        ({"time": "$eval(str(10**400))"}, "time: must be a number from 0 to 1000000000, got inf"),
        ({"site": "$eval('a|b')"}, "site: names must be non-empty and free of '|', got 'a|b'"),
        ({"os": ["x" * 200, "y" * 60]}, "os: the names must fit in 255 characters together"),
    ],
)  # fmt: skip
def test_resolved_requirements_are_range_checked_against_their_columns(requirements, message):
    cfg = DatasetConfig.model_validate(
        {"tasks": [{"name": "t", "requirements": requirements,
                    "trays": [{"modules": [{"src": "x.sh"}]}]}]}
    )  # fmt: skip
    with pytest.raises(ExpressionError) as info:
        Resolver(cfg, JobInfo()).requirements(0)
    assert str(info.value) == f"tasks[0].requirements.{message}"


def _one_module(args, system=None, **steering):
    return DatasetConfig.model_validate(
        {"steering": {"parameters": steering, "system": system or {}},
         "tasks": [{"name": "t", "trays": [{"modules": [{"src": "run.sh", "args": args}]}]}]}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "job", "system", "error", "message"),
    [
        # the job's own values fail wherever it runs
        ("$eval(1/($args(job)-5))", 5, {}, JobSpecError, "division by zero"),
        ("$steering(files)[$args(job)]", 2, {}, JobSpecError, "index 2 out of range"),
        # a site value takes part: another site may resolve it
        ("$eval(1/$system(n))", 0, {"n": 0}, SiteSpecError, "division by zero"),
        ("$system(where)", 0, {}, SiteSpecError, "no system value 'where'"),
        ("$eval(2/$(p))", 0, {"n": 0}, SiteSpecError, "division by zero"),
        # ... and so does a config default that a site may override
        ("$eval(1/$system(d))", 0, {}, SiteSpecError, "division by zero"),
    ],
)
def test_a_spec_that_cannot_be_resolved_says_whether_a_site_could(
    args, job, system, error, message
):
    config = _one_module(args, {"d": 0}, files=["a", "b"], p="$system(n)")
    info = JobInfo(job=job, jobs_submitted=10, system=system)
    with pytest.raises(error, match=message) as caught:
        resolve_at_site(config, 0, info)
    assert str(caught.value).startswith("tasks[0].trays[0].modules[0].args: ")
    assert "\n" not in str(caught.value)
    ok = resolve_at_site(
        config, 0, JobInfo(job=1, jobs_submitted=10, system={"n": 1, "d": 1, "where": "x"})
    )
    assert ok.trays[0].modules[0].argv


def _modules(n, args):
    return DatasetConfig.model_validate(
        {"tasks": [{"name": "t", "trays": [{"modules": [{"src": "x", "args": args}] * n}]}]}
    )


def test_one_step_budget_bounds_a_whole_job():
    # each module alone is cheap; a resolver's evaluators share one budget, so many are not
    config = _modules(40, "$eval(len([" + ", ".join(["1"] * 60) + "]))")  # ~60 steps each
    assert len(Resolver(config, JobInfo(), max_steps=10**6).task(0).trays[0].modules) == 40
    with pytest.raises(ExpressionError, match="more than 1000 steps"):
        Resolver(config, JobInfo(), max_steps=1000).task(0)


def test_walking_a_large_value_costs_steps():
    tray = {
        "parameters": {"files": [f"f{i}" for i in range(20_000)]},
        "modules": [{"src": "$(files)[0]"}] * 30,
    }
    config = DatasetConfig.model_validate({"tasks": [{"name": "t", "trays": [tray]}]})
    # each module's evaluator walks the tray's list once: 30 walks of 20,000 items
    with pytest.raises(ExpressionError, match="more than 500000 steps"):
        Resolver(config, JobInfo(), max_steps=500_000).task(0)


def test_values_that_are_the_same_at_every_level_are_evaluated_once_per_job():
    config = DatasetConfig.model_validate(
        {
            "steering": {
                "parameters": {
                    "files": [f"f{i}" for i in range(20_000)],
                    "tag": "$sprintf('%06d', $args(job))",
                    "where": "$args(task)/$steering(tag)",  # differs per task
                }
            },
            "tasks": [
                {
                    "name": n,
                    "trays": [{"modules": [{"src": "$steering(files)[$args(job)]",
                                            "args": "$steering(where)"}] * 30}],
                }
                for n in ("a", "b")
            ],
        }
    )  # fmt: skip
    resolver = Resolver(config, JobInfo(job=7), max_steps=100_000)
    a, b = resolver.task(0), resolver.task(1)  # 60 modules: the list is walked once
    assert [m.src for m in a.trays[0].modules] == ["f7"] * 30
    assert {m.argv for m in a.trays[0].modules} == {("a/000007",)}
    assert {m.argv for m in b.trays[0].modules} == {("b/000007",)}


def test_site_values_reached_through_a_remembered_parameter_still_make_warnings():
    # the second use of $steering(cores) finds the value remembered from the first
    args = {"j": "$steering(cores)", "n": "$eval($steering(cores) + 1)"}
    config = DatasetConfig.model_validate(
        {
            "steering": {"parameters": {"cores": "$system(cores)"}},
            "tasks": [{"name": "t", "trays": [{"modules": [{"src": "x", "args": args}]}]}],
        }
    )
    problems = []
    Resolver(config, JobInfo(defer_site_values=True), problems).task(0)
    assert [(p.path, p.severity) for p in problems] == [
        ("tasks[0].trays[0].modules[0].args.n", "warning")
    ]
