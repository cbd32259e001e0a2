import pytest
from sqlalchemy import func, select

from frazil.config import ValidationSettings
from frazil.errors import ConfigError, NotFound, Rejected
from frazil.loader import load_config
from frazil.model.rng import job_seed
from frazil.model.spec import DatasetConfig
from frazil.services import queries
from frazil.services.materialize import materialize_step
from frazil.services.submit import edit_config, set_jobs, submit, submit_dataset, truncate
from frazil.services.validation import check
from frazil.store.schema import (
    config_module,
    config_parameter,
    config_tray,
    dataset,
    dataset_config,
    event,
    job,
    task,
    task_dependency,
)
from tests.conftest import EXAMPLE
from tests.services.conftest import make_config

NOW = 1_000_000.0


def count(db, table, *where):
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_submit_creates_dataset_config_dag_and_jobs(db):
    d = submit(db, make_config("diamond"), jobs=5, now=NOW, owner="alice", alias="diamond-1")
    view = queries.dataset_status(db, "diamond-1")
    assert view.dataset.id == d and view.dataset.owner == "alice"
    assert view.dataset.status == "processing"
    assert (view.dataset.jobs_submitted, view.dataset.jobs_materialized) == (5, 5)
    assert view.counts == {
        "a": {"waiting": 5},
        "b": {"idle": 5},
        "c": {"idle": 5},
        "d": {"idle": 5},
    }
    assert count(db, task_dependency, task_dependency.c.dataset_id == d) == 4
    assert count(db, dataset_config, dataset_config.c.dataset_id == d) == 1
    with db.read() as conn:
        seeds = conn.execute(select(job.c.job_index, job.c.seed).where(job.c.dataset_id == d)).all()
        deps = dict(
            conn.execute(
                select(task.c.name, task.c.deps_pending).where(
                    task.c.dataset_id == d, task.c.job_index == 0
                )
            ).all()
        )
    assert {s.seed for s in seeds} == {job_seed(d, s.job_index) for s in seeds}
    assert deps == {"a": 0, "b": 1, "c": 1, "d": 2}


def test_requirements_are_stored_evaluated(db):
    config = load_config(EXAMPLE)
    d = submit(db, config, jobs=2, now=NOW)
    rows = {t.name: t for t in queries.list_tasks(db, d, job=1)}
    assert rows["photon_propagation"].gpu == 1
    assert rows["photon_propagation"].time == 1.0  # from $eval(0.5 + nevents / 4000)
    assert rows["corsika"].memory == 2.0


def test_a_rejected_submission_leaves_nothing(db):
    bad = DatasetConfig.model_validate(
        {"tasks": [{"name": "a", "trays": [{"modules": [{"src": "$steering(nope)"}]}]}]}
    )
    with pytest.raises(ConfigError, match="no steering value 'nope'"):
        submit(db, bad, jobs=3, now=NOW)
    assert count(db, dataset) == 0 and count(db, task) == 0 and count(db, event) == 0


def test_errors_that_only_the_last_job_hits_are_found():
    config = DatasetConfig.model_validate(
        {
            "steering": {"parameters": {"files": ["a", "b", "c"]}},
            "tasks": [
                {"name": "a", "trays": [{"modules": [{"src": "$steering(files)[$args(job)]"}]}]}
            ],
        }
    )
    check(config, ValidationSettings(), jobs=range(3))
    with pytest.raises(ConfigError, match=r"out of range.*\(job 3\)"):
        check(config, ValidationSettings(), jobs=range(4))


def test_alias_rules(db):
    submit(db, make_config(), jobs=1, now=NOW, alias="mine")
    with pytest.raises(Rejected, match="taken"):
        submit(db, make_config(), jobs=1, now=NOW, alias="mine")
    with pytest.raises(Rejected, match="alias"):
        submit(db, make_config(), jobs=1, now=NOW, alias="123")
    assert count(db, dataset) == 1


def test_large_datasets_materialize_in_the_background(db):
    d = submit(db, make_config("chain", 2), jobs=25, now=NOW, sync_jobs=10)
    assert queries.dataset_status(db, d).dataset.jobs_materialized == 10
    assert materialize_step(db, NOW, max_jobs=8, chunk=4) == 8
    assert queries.dataset_status(db, d).dataset.jobs_materialized == 18
    assert materialize_step(db, NOW) == 7
    assert materialize_step(db, NOW) == 0
    assert count(db, task, task.c.dataset_id == d) == 50
    assert count(db, job, job.c.dataset_id == d) == 25


def test_zero_jobs_then_more(db):
    d = submit(db, make_config("flat", 1), jobs=0, now=NOW)
    assert queries.dataset_status(db, d).dataset.status == "processing"
    set_jobs(db, d, 3, now=NOW)
    materialize_step(db, NOW)
    assert count(db, job, job.c.dataset_id == d) == 3
    with pytest.raises(Rejected, match="only grow"):
        set_jobs(db, d, 2, now=NOW)


def test_truncate_completes_when_existing_jobs_are_done(db):
    d = submit(db, make_config("flat", 1), jobs=10, now=NOW, sync_jobs=0)
    materialize_step(db, NOW, max_jobs=2, chunk=2)
    truncate(db, d, now=NOW)
    view = queries.dataset_status(db, d).dataset
    assert view.truncated and view.jobs_submitted == 2
    assert materialize_step(db, NOW) == 0


def test_job_specific_requirements_evaluate_per_job(db):
    config = make_config("flat", 1, requirements={"memory": "$eval(1 + $args(job))"})
    d = submit(db, config, jobs=3, now=NOW)
    assert [t.memory for t in queries.list_tasks(db, d)] == [1.0, 2.0, 3.0]


def test_a_job_whose_requirements_fail_is_created_failed(db):
    config = make_config("flat", 1, requirements={"memory": "$eval(10 / abs(5 - $args(job)))"})
    d = submit(db, config, jobs=2, now=NOW)
    # no time to check the jobs between the first (2) and the last (9) new ones: job 5 passes
    checked = set_jobs(db, d, 10, now=NOW, limits=ValidationSettings(jobs_seconds=1e-9))
    assert checked is not None and (checked.checked, checked.sampled) == (2, True)
    materialize_step(db, NOW)
    status = {t.job_index: t.status for t in queries.list_tasks(db, d)}
    assert status == {j: "failed" if j == 5 else "waiting" for j in range(10)}
    view = queries.dataset_status(db, d)
    assert view.dataset.jobs_failed == 1 and view.dataset.status == "errors"
    reasons = [e.reason for e in queries.events(db, d) if e.action == "materialize"]
    assert reasons and "division by zero" in reasons[0]


#: Job 2500 of 4000 divides by zero; job 0 and the last job are fine.
POISONED = make_config("flat", 1, requirements={"memory": "$eval(1 / abs($args(job) - 2500))"})


def test_a_job_that_fails_among_4000_is_found_at_submit(db):
    with pytest.raises(ConfigError) as info:
        submit(db, POISONED, jobs=4000, now=NOW)
    (problem,) = info.value.problems
    assert problem.path == "tasks[0].requirements.memory"
    assert "division by zero" in problem.message and problem.message.endswith("(job 2500)")
    assert count(db, dataset) == 0


def test_a_job_that_fails_among_4000_is_found_at_set_jobs(db):
    d = submit(db, POISONED, jobs=2000, now=NOW)
    with pytest.raises(ConfigError, match=r"division by zero.*\(job 2500\)"):
        set_jobs(db, d, 4000, now=NOW)
    assert queries.dataset_status(db, d).dataset.jobs_submitted == 2000
    assert set_jobs(db, d, 2500, now=NOW).describe() == "checked every job (500)"


def test_without_the_time_for_every_job_the_answer_says_which_were_checked(db):
    config = make_config("flat", 1)
    done = submit_dataset(db, config, jobs=100, now=NOW, limits=ValidationSettings())
    assert (done.jobs.checked, done.jobs.total, done.jobs.sampled) == (100, 100, False)
    done = submit_dataset(
        db, config, jobs=10**6, now=NOW, sync_jobs=0, limits=ValidationSettings(jobs_seconds=0.05)
    )
    assert done.jobs.sampled and 2 <= done.jobs.checked < 10**6
    assert done.jobs.describe().startswith(
        f"checked {done.jobs.checked} of 1000000 jobs: the first (0), the last (999999) and a "
        f"random sample of {done.jobs.checked - 2} of the 999998 others"
    )


def test_searchable_config_rows(db):
    example = submit(db, load_config(EXAMPLE), jobs=1, now=NOW)
    other = submit(db, make_config(), jobs=1, now=NOW)
    assert queries.find_datasets(db, module="clsim") == [example]
    assert queries.find_datasets(db, module="detector_response", parameter="noise-rate") == [
        example
    ]
    assert queries.find_datasets(db, parameter="type", value="corsika") == [example]
    assert (
        queries.find_datasets(db, module="generate_corsika", parameter="type", value="nugen") == []
    )
    assert other not in queries.find_datasets(db, module="clsim")


def test_every_searchable_module_row_hangs_from_its_own_tray(db):
    """Trays and modules are inserted many at a time: each module row must still point at
    the tray (and task) it was written in, and each parameter row at its module."""
    config = DatasetConfig.model_validate({
        "tasks": [
            {
                "name": f"t{t}",
                "trays": [
                    {"name": f"t{t}r{r}", "modules": [
                        {"name": f"t{t}r{r}m{m}", "src": "run.sh",
                         "parameters": {"where": f"{t}.{r}.{m}"}}
                        for m in range(r + 1)
                    ]}
                    for r in range(3)
                ],
            }
            for t in range(4)
        ],
    })  # fmt: skip
    d = submit(db, config, jobs=1, now=NOW)
    with db.read() as conn:
        rows = conn.execute(
            select(config_tray.c.task_name, config_tray.c.name, config_module.c.name,
                   config_module.c.module_index, config_parameter.c.value_text)
            .join(config_module, config_module.c.tray_id == config_tray.c.id)
            .join(config_parameter, config_parameter.c.module_id == config_module.c.id)
            .join(dataset_config, dataset_config.c.id == config_tray.c.config_id)
            .where(dataset_config.c.dataset_id == d)
        ).all()  # fmt: skip
    assert len(rows) == 4 * (1 + 2 + 3)
    for task_name, tray, module, index, where in rows:
        assert tray.startswith(task_name) and module.startswith(tray)
        assert module == f"{tray}m{index}" and where == ".".join(
            module[1:].replace("r", "m").split("m")
        )


def test_edit_config_makes_a_new_version(db):
    d = submit(db, make_config("chain", 2), jobs=1, now=NOW)
    changed = make_config("chain", 2, parameters={"x": 1})
    assert edit_config(db, d, changed, now=NOW, comment="add x").version == 2
    assert queries.dataset_config_text(db, d)["tasks"][0]["parameters"] == {"x": 1}
    assert "parameters" not in queries.dataset_config_text(db, d, 1)["tasks"][0]
    with pytest.raises(Rejected, match="keep the task names"):
        edit_config(db, d, make_config("chain", 3), now=NOW)


def test_unknown_datasets(db):
    with pytest.raises(NotFound):
        queries.dataset_status(db, 999)
    with pytest.raises(NotFound):
        queries.dataset_status(db, "nope")
