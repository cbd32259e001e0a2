"""Checks that need the whole config: size, names, dependencies, policy and every expression.

Expressions are checked by resolving every task of a job exactly as a pilot would,
collecting every problem instead of stopping at the first; the first and the last iteration
of each tray stand for the others. Values that only a site supplies at run time
(``$system``, ``$environ``) stand in as placeholders, and what depends on them is reported
as a warning, not an error.

A ``Plan`` says which jobs to check and what the check may cost. The first and the last
job are always checked; the jobs between them are checked in order while the plan's
``sweep_seconds`` last, and when they cannot all be checked in that time, a random sample
of them is, as many as the time allows (``Report.jobs`` says which). A ``Budget`` bounds the
whole check: past it the check stops with ``BudgetExceeded``, located where it was.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from frazil.errors import Problem
from frazil.model.budget import Budget
from frazil.model.dag import build_dag
from frazil.model.policy import policy_from_options
from frazil.model.resolve import JobInfo, Resolver
from frazil.model.spec import DatasetConfig, Module

# The built-in module classes' parameter declarations (standard library only, like the
# model); an external class's are known only where its code runs, on the worker node.
from frazil.pilot.modules.base import Param
from frazil.pilot.modules.registry import BUILTIN_MODULES

#: The most jobs a random sample draws (its list is held in memory).
MAX_SAMPLE = 1_000_000


@dataclass(frozen=True)
class Limits:
    """How large a config may be (``[validation]`` in ``frazil.toml`` sets them)."""

    tasks: int = 1000
    modules: int = 5000
    expressions: int = 50_000


@dataclass(frozen=True)
class JobsChecked:
    """Which of the jobs ``first`` to ``stop - 1`` a check resolved."""

    first: int
    stop: int
    checked: int
    #: True: the jobs between the first and the last were too many for the time, and a
    #: random sample of them was checked
    sampled: bool = False

    @property
    def total(self) -> int:
        """How many jobs the check was asked about."""
        return self.stop - self.first

    def describe(self) -> str:
        """One line for the answer to the user."""
        if self.checked >= self.total:
            return f"checked every job ({self.total})"
        head = f"checked {self.checked} of {self.total} jobs: the first ({self.first}), the last "
        if self.sampled:
            return head + (
                f"({self.stop - 1}) and a random sample of {self.checked - 2} of the "
                f"{self.total - 2} others, as many as the time for checking jobs allowed"
            )
        return head + (
            f"({self.stop - 1}) and the {self.checked - 2} after the first, in order, until the "
            "time for checking jobs ran out"
        )


@dataclass(frozen=True)
class Report:
    """What validation found, and how much it looked at."""

    problems: tuple[Problem, ...]
    tasks: int = 0
    modules: int = 0
    expressions: int = 0
    jobs: JobsChecked | None = None

    @property
    def errors(self) -> list[Problem]:
        """Problems that make the config unusable."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems worth a look that do not stop a submission."""
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors


@dataclass(frozen=True)
class Plan:
    """Which jobs a check resolves, and what it may cost."""

    #: the jobs to check (an empty range checks job 0, as for a dataset of no jobs yet)
    jobs: range = range(1)
    #: ``$args(jobs_submitted)``; the end of ``jobs`` by default
    jobs_submitted: int | None = None
    limits: Limits = field(default_factory=Limits)
    #: the whole check's budget; None: unbounded (and every job is checked)
    budget: Budget | None = None
    #: seconds of the budget's clock for the jobs between the first and the last
    sweep_seconds: float = math.inf
    #: where the sample of jobs comes from (a fresh one by default)
    rng: random.Random | None = None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)


def count_expressions(config: DatasetConfig) -> int:
    """How many strings in the config hold a ``$``."""
    return sum("$" in s for s in _strings(config.model_dump(by_alias=True)))


def _class_problems(module: Module, path: str) -> list[Problem]:
    """A class module takes ``parameters`` (never ``args``); a built-in class's parameters
    are checked against its declaration, an external class's name for its shape."""
    problems = []
    if module.args not in ("", [], {}):
        problems.append(
            Problem(
                f"{path}.args",
                f"class {module.class_!r} takes 'parameters', not 'args' (the command line of "
                "a 'src' script); move these values into parameters",
            )
        )
    name = module.class_.strip()
    if "$" in name:
        return problems
    declared = BUILTIN_MODULES.get(name)
    if declared is None:
        module_name, _, attribute = name.rpartition(":") if ":" in name else name.rpartition(".")
        if not module_name or not attribute:
            known = ", ".join(BUILTIN_MODULES)
            problems.append(
                Problem(
                    f"{path}.class",
                    f"unknown module class {name!r}: not a built-in ({known}) nor a dotted "
                    "path such as package.module:Class",
                )
            )
        return problems
    params = declared.all_parameters()
    missing = [key for key, p in params.items() if p.required and key not in module.parameters]
    if missing:
        problems.append(
            Problem(
                f"{path}.parameters",
                f"{name} needs parameter(s): {_described(params, missing)}",
            )
        )
    unknown = sorted(set(module.parameters) - set(params))
    if unknown:
        problems.append(
            Problem(
                f"{path}.parameters",
                f"{name} takes no parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(params) or 'none'}",
            )
        )
    return problems


def _described(params: Mapping[str, Param], keys: list[str]) -> str:
    return "; ".join(f"{k} ({params[k].help})" if params[k].help else k for k in keys)


def count_modules(config: DatasetConfig) -> int:
    """Modules in all trays of all tasks."""
    return sum(len(tray.modules) for task in config.tasks for tray in task.trays)


def _size_problems(config: DatasetConfig, limits: Limits) -> tuple[list[Problem], int, int]:
    """The config's counts over the limits (the cheap counts first), modules, expressions."""
    modules = count_modules(config)
    over = [
        ("tasks", len(config.tasks), limits.tasks, "max_tasks"),
        ("modules", modules, limits.modules, "max_modules"),
    ]
    problems = [
        Problem("tasks", f"{n} {what}; a config may have at most {cap} ([validation] {key})")
        for what, n, cap, key in over
        if n > cap
    ]
    if problems:
        return problems, modules, 0
    expressions = count_expressions(config)
    if expressions > limits.expressions:
        problems.append(
            Problem(
                "",
                f"{expressions} expressions; a config may have at most {limits.expressions} "
                "([validation] max_expressions)",
            )
        )
    return problems, modules, expressions


class _Checker:
    """Resolves jobs of one config into one list of problems."""

    def __init__(self, config: DatasetConfig, plan: Plan, jobs_submitted: int) -> None:
        self.config = config
        self.plan = plan
        self.jobs_submitted = jobs_submitted
        self.problems: list[Problem] = []

    def job(self, job: int, *, first: bool) -> bool:
        """Check one job; True if it has errors. Warnings are kept from the first job only,
        and errors of any job but job 0 say which job they are from."""
        found: list[Problem] = []
        info = JobInfo(
            job=job, jobs_submitted=max(self.jobs_submitted, job + 1), defer_site_values=True
        )
        resolver = Resolver(
            self.config, info, found, every_iteration=False, budget=self.plan.budget
        )
        resolver.steering()
        for t in range(len(self.config.tasks)):
            resolver.task(t)
        errors = False
        for p in found:
            if p.severity != "error" and not first:
                continue
            errors = errors or p.severity == "error"
            if p.severity == "error" and job != 0:
                p = replace(p, message=f"{p.message} (job {job})")  # noqa: PLW2901
            if p not in self.problems:
                self.problems.append(p)
        return errors

    def sweep(self, others: range, seconds_per_job: float) -> tuple[int, bool]:
        """Check ``others`` in order if the time allows, else a random sample of them, until
        the time for them is spent or a job has errors: how many were checked, and whether
        they were a random sample."""
        budget = self.plan.budget
        order: range | list[int] = others
        allowance = math.inf
        seconds_per_job = max(seconds_per_job, 1e-6)  # a coarse clock may have seen nothing
        if budget is not None:
            # half of what is left at most: the check must end inside its budget
            allowance = min(self.plan.sweep_seconds, budget.left() / 2)
            fits = int(allowance / seconds_per_job)
            if fits < len(others):  # in a random order until the time is spent
                rng = self.plan.rng or random.Random()  # noqa: S311 - a sample, not a secret
                order = rng.sample(others, min(len(others), 2 * fits + 10, MAX_SAMPLE))
        start = budget.used() if budget is not None else 0.0
        checked = 0
        for job in order:  # no job is begun that would end past the time for them
            if budget is not None and budget.used() - start + seconds_per_job > allowance:
                break
            checked += 1
            if self.job(job, first=False):
                break
        return checked, isinstance(order, list)


def check_config(
    config: DatasetConfig, *, job: int = 0, jobs_submitted: int = 1, plan: Plan | None = None
) -> Report:
    """Every problem in a config that passed the shape checks of ``spec``.

    Without a ``plan``, job ``job`` of ``jobs_submitted`` is checked.
    """
    if plan is None:
        plan = Plan(jobs=range(job, job + 1), jobs_submitted=jobs_submitted)
    size_problems, modules, expressions = _size_problems(config, plan.limits)
    counts = Report((), tasks=len(config.tasks), modules=modules, expressions=expressions)
    if size_problems:
        return replace(counts, problems=tuple(size_problems))
    problems: list[Problem] = []
    _, dag_problems = build_dag([t.name for t in config.tasks], [t.depends for t in config.tasks])
    problems += dag_problems
    _, policy_problems = policy_from_options(config.options)
    problems += policy_problems
    for t, task in enumerate(config.tasks):
        for r, tray in enumerate(task.trays):
            for m, module in enumerate(tray.modules):
                if module.class_:
                    problems += _class_problems(module, f"tasks[{t}].trays[{r}].modules[{m}]")
    jobs = plan.jobs if len(plan.jobs) else range(0, 1)
    submitted = plan.jobs_submitted if plan.jobs_submitted is not None else max(plan.jobs.stop, 1)
    checker = _Checker(config, plan, submitted)
    checker.problems = problems
    clock = plan.budget.used if plan.budget is not None else (lambda: 0.0)
    first, last = jobs[0], jobs[-1]
    started = clock()
    failed = checker.job(first, first=True)
    per_job = clock() - started
    if last != first and not failed:
        started = clock()
        failed = checker.job(last, first=False)
        per_job = clock() - started  # the second job is the better guess: caches are warm
    checked, sampled = (1 if last == first else 2), False
    others = range(first + 1, last)
    if others and not failed:
        swept, sampled = checker.sweep(others, per_job)
        checked += swept
    return replace(
        counts,
        problems=tuple(checker.problems),
        jobs=JobsChecked(jobs.start, jobs.stop, checked, sampled),
    )
