"""Checks that need the whole config: names, dependencies, policy options and every expression.

Expressions are checked by resolving every task of a sample job (job 0 by default) exactly
as a pilot would, collecting every problem instead of stopping at the first; the first and
the last iteration of each tray stand for the others, as the first and last job do for a
submission. Values that
only a site supplies at run time (``$system``, ``$environ``) stand in as placeholders, and
what depends on them is reported as a warning, not an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from frazil.errors import Problem
from frazil.model.dag import build_dag
from frazil.model.policy import policy_from_options
from frazil.model.resolve import JobInfo, Resolver
from frazil.model.spec import DatasetConfig, Module

# The built-in module classes' parameter declarations (standard library only, like the
# model); an external class's are known only where its code runs, on the worker node.
from frazil.pilot.modules.base import Param
from frazil.pilot.modules.registry import BUILTIN_MODULES


@dataclass(frozen=True)
class Report:
    """What validation found, and how much it looked at."""

    problems: tuple[Problem, ...]
    tasks: int = 0
    modules: int = 0
    expressions: int = 0

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


def check_config(config: DatasetConfig, *, job: int = 0, jobs_submitted: int = 1) -> Report:
    """Every problem in a config that passed the shape checks of ``spec``."""
    problems: list[Problem] = []
    _, dag_problems = build_dag([t.name for t in config.tasks], [t.depends for t in config.tasks])
    problems += dag_problems
    _, policy_problems = policy_from_options(config.options)
    problems += policy_problems
    info = JobInfo(job=job, jobs_submitted=max(jobs_submitted, job + 1), defer_site_values=True)
    resolver = Resolver(config, info, problems, every_iteration=False)
    resolver.steering()
    for t in range(len(config.tasks)):
        resolver.task(t)
    for t, task in enumerate(config.tasks):
        for r, tray in enumerate(task.trays):
            for m, module in enumerate(tray.modules):
                if module.class_:
                    problems += _class_problems(module, f"tasks[{t}].trays[{r}].modules[{m}]")
    modules = sum(len(tray.modules) for task in config.tasks for tray in task.trays)
    return Report(
        problems=tuple(problems),
        tasks=len(config.tasks),
        modules=modules,
        expressions=count_expressions(config),
    )
