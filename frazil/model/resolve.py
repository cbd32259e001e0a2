"""From a dataset config to what one task of one job runs: every expression evaluated.

Scopes nest dataset → task → tray → module: each level sees its own parameters first, then
the enclosing levels', then steering parameters and options (``$(name)``), and ``$args``
grows at each level (``task``, ``tray``, ``iter``, ``module``, ...).

A ``Resolver`` either raises the first ``ExpressionError`` located at its config path, or,
given a problem list, records every problem and carries on with a stand-in value: validation
uses that mode to report everything in one pass over exactly the fields a pilot would use.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from frazil.errors import (
    ConfigError,
    ExpressionError,
    JobSpecError,
    Problem,
    SiteSpecError,
    UnresolvedReference,
)
from frazil.model.budget import Budget
from frazil.model.dag import build_dag
from frazil.model.expressions import Context, Evaluator, to_text
from frazil.model.limits import AMOUNT, COUNT, ITERATIONS, Range, shown
from frazil.model.paths import join_path
from frazil.model.rng import job_seed
from frazil.model.spec import NAME_LENGTH, Data, DatasetConfig
from frazil.model.urls import MODULE_URL_SCHEMES, climbs, plain_file_name, url_scheme
from frazil.wire import Data as ResolvedDataShape
from frazil.wire import Module, Requirements, TaskSpec, Tray

#: Evaluation steps for everything one resolver evaluates (a job's tasks when a config is
#: checked, one task when a pilot asks for its spec): the bound on one job as a whole, where
#: each expression alone is bounded by ``Context.max_steps``.
RESOLVE_STEPS = 2_000_000


@dataclass(frozen=True)
class JobInfo:
    """Which job is being resolved, and what the site and the process provide."""

    dataset: int = 0
    job: int = 0
    jobs_submitted: int = 1
    dataset_seed: int = 0
    system: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    strict: bool = True
    defer_site_values: bool = False


#: What the resolver makes is what a pilot runs: the wire format's shapes.
ResolvedRequirements = Requirements
ResolvedData = ResolvedDataShape
ResolvedModule = Module
ResolvedTray = Tray
ResolvedTask = TaskSpec


def args_to_argv(value: Any) -> list[str]:
    """A module's evaluated ``args``: a string splits like a shell (no shell runs), a list
    gives one argument per item, a mapping gives ``--key=value`` (``true`` gives ``--key``,
    ``false`` and ``null`` leave the option out)."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ExpressionError(f"args cannot be split into arguments: {exc}") from exc
    if isinstance(value, list):
        return [to_text(v) for v in value]
    if isinstance(value, Mapping):
        argv = []
        for key, v in value.items():
            if v is True:
                argv.append(f"--{key}")
            elif v is not False and v is not None:
                argv.append(f"--{key}={to_text(v)}")
        return argv
    return [to_text(value)]


class Resolver:
    """Resolves the tasks of one job of a config."""

    def __init__(
        self,
        config: DatasetConfig,
        info: JobInfo,
        problems: list[Problem] | None = None,
        *,
        every_iteration: bool = True,
        budget: Budget | None = None,
        max_steps: int = RESOLVE_STEPS,
    ) -> None:
        self.config = config
        self.info = info
        self.problems = problems
        #: a check's time budget, looked at before each value (``BudgetExceeded`` past it)
        self.budget = budget
        self._steps = [max_steps]  # shared by every evaluator of this resolver
        self._max_steps = max_steps
        self._shared: dict[str, Any] = {}  # values that are the same at every level of the job
        #: False: a tray's first and last iterations stand for all (validation, like jobs)
        self.every_iteration = every_iteration
        seed = job_seed(info.dataset_seed, info.job)
        self._options: dict[str, Any] = {
            **config.options,
            "dataset": info.dataset,
            "job": info.job,
            "jobs_submitted": info.jobs_submitted,
            "seed": seed,
            "dataset_seed": info.dataset_seed,
        }
        self._base = Context(
            steering=config.steering.parameters,
            system={**config.steering.system, **info.system},
            options=self._options,
            environ=info.environ,
            metadata={
                "description": config.description,
                "version": config.version,
                "dataset": info.dataset,
                **info.metadata,
            },
            seed=seed,
            strict=info.strict,
            defer_site_values=info.defer_site_values,
        )
        self.dataset = Evaluator(self._base, self._steps, max_steps, self._shared)

    # -- evaluators per level ---------------------------------------------------------------

    def _level(
        self, scopes: tuple[tuple[str, Mapping[str, Any]], ...], **options: Any
    ) -> Evaluator:
        context = replace(self._base, scopes=scopes, options={**self._options, **options})
        return Evaluator(context, self._steps, self._max_steps, self._shared)

    def task_evaluator(self, t: int) -> Evaluator:
        task = self.config.tasks[t]
        return self._level((("task", task.parameters),), task=task.name, task_index=t)

    def tray_evaluator(self, t: int, r: int, iteration: int) -> Evaluator:
        task, tray = self.config.tasks[t], self.config.tasks[t].trays[r]
        return self._level(
            (("tray", tray.parameters), ("task", task.parameters)),
            task=task.name,
            task_index=t,
            tray=tray.name,
            tray_index=r,
            iter=iteration,
        )

    def module_evaluator(self, t: int, r: int, m: int, iteration: int) -> Evaluator:
        task, tray = self.config.tasks[t], self.config.tasks[t].trays[r]
        module = tray.modules[m]
        return self._level(
            (("module", module.parameters), ("tray", tray.parameters), ("task", task.parameters)),
            task=task.name,
            task_index=t,
            tray=tray.name,
            tray_index=r,
            iter=iteration,
            module=module.name,
            module_index=m,
        )

    # -- evaluating with locations ----------------------------------------------------------

    def value(
        self, ev: Evaluator, raw: Any, path: str, fallback: Any = None, *, soft: bool = False
    ) -> Any:
        """Evaluate ``raw`` and locate any error at ``path``.

        With a problem list, an error is recorded and ``fallback`` returned. ``soft`` values
        (parameters) may legitimately depend on an inner scope where they are used, so an
        unresolved name in them is a warning; so is any error that follows from a site value
        that only the site will supply.
        """
        if self.budget is not None:
            self.budget.spend(path, f"checking job {self.info.job}")
        if isinstance(raw, Mapping):
            return {
                self._key(ev, k, path, soft): self.value(ev, v, join_path(path, k), soft=soft)
                for k, v in raw.items()
            }
        if isinstance(raw, list):
            return [self.value(ev, v, join_path(path, i), soft=soft) for i, v in enumerate(raw)]
        deferred_before = len(ev.deferred)
        try:
            return ev.evaluate(raw)
        except ExpressionError as exc:
            exc.at(path)
            if self.problems is None:
                raise
            site = len(ev.deferred) > deferred_before
            warn = site or (soft and isinstance(exc, UnresolvedReference))
            message = exc.describe()
            if site:
                message += " (a site value is only known at run time)"
            self._record(Problem(path, message, severity="warning" if warn else "error"))
            return raw if fallback is None else fallback

    def _key(self, ev: Evaluator, key: Any, path: str, soft: bool) -> str:
        return to_text(self.value(ev, key, path, soft=soft)) if isinstance(key, str) else str(key)

    def _record(self, problem: Problem) -> None:
        assert self.problems is not None
        if problem not in self.problems:
            self.problems.append(problem)

    def _fail(self, path: str, message: str) -> None:
        if self.problems is None:
            raise ExpressionError(message).at(path)
        self._record(Problem(path, message))

    def _number(self, ev: Evaluator, raw: Any, path: str, default: float, bounds: Range) -> Any:
        """A number within ``bounds`` (the one range check of resolved numbers: each range
        fits the column that stores it); numeric text counts as its number."""
        value = number = self.value(ev, raw, path, default)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
        problem = bounds.problem(number)
        if problem is not None:
            self._fail(path, problem)
            return int(default) if bounds.integer else default
        return int(number) if bounds.integer else float(number)

    def _names(self, ev: Evaluator, raw: Any, path: str) -> tuple[str, ...]:
        """Accepted names, kept in one column as ``|a|b|``: no ``|`` in a name, and all of
        them in ``NAME_LENGTH`` characters."""
        value = self.value(ev, raw, path, [])
        if value is None:
            return ()
        names = (value,) if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or not all(isinstance(v, str) for v in names):
            self._fail(path, f"must be a name or a list of names, got {shown(value)}")
        elif any("|" in v or not v for v in names):
            self._fail(path, f"names must be non-empty and free of '|', got {shown(value)}")
        elif names and sum(len(v) + 1 for v in names) + 1 > NAME_LENGTH:
            self._fail(path, f"the names must fit in {NAME_LENGTH} characters together")
        else:
            return tuple(names)
        return ()

    def _data(self, ev: Evaluator, entries: list[Data], path: str) -> list[ResolvedData]:
        out = []
        for k, d in enumerate(entries):
            deferred = len(ev.deferred)
            remote = to_text(self.value(ev, d.remote, f"{path}[{k}].remote"))
            local = to_text(self.value(ev, d.local, f"{path}[{k}].local"))
            if len(ev.deferred) == deferred:  # site values may still make these right
                if local and not plain_file_name(local):
                    self._fail(f"{path}[{k}].local", f"must be a plain file name, got {local!r}")
                scheme = url_scheme(remote)
                if scheme is None:
                    self._fail(f"{path}[{k}].remote", f"not a valid URL or path: {remote!r}")
                elif not scheme and climbs(remote):
                    self._fail(
                        f"{path}[{k}].remote", f"climbs above the data directory: {remote!r}"
                    )
            if not local and remote:
                local = remote.rstrip("/").rsplit("/", 1)[-1]
            out.append(ResolvedData(remote, local, d.type, d.movement, d.transfer))
        return out

    # -- tasks ------------------------------------------------------------------------------

    def requirements(self, t: int) -> ResolvedRequirements:
        """Task ``t``'s requirements, evaluated in the task's scope."""
        ev = self.task_evaluator(t)
        req = self.config.tasks[t].requirements
        path = f"tasks[{t}].requirements"
        extra = {
            key: self.value(ev, raw, f"{path}.{key}")
            for key, raw in (req.model_extra or {}).items()
        }
        return ResolvedRequirements(
            cpu=self._number(ev, req.cpu, f"{path}.cpu", 1, COUNT),
            gpu=self._number(ev, req.gpu, f"{path}.gpu", 0, COUNT),
            memory=self._number(ev, req.memory, f"{path}.memory", 1.0, AMOUNT),
            disk=self._number(ev, req.disk, f"{path}.disk", 1.0, AMOUNT),
            time=self._number(ev, req.time, f"{path}.time", 1.0, AMOUNT),
            os=self._names(ev, req.os, f"{path}.os"),
            site=self._names(ev, req.site, f"{path}.site"),
            extra=extra,
        )

    def iterations(self, t: int, r: int) -> int:
        """How many times tray ``r`` of task ``t`` runs."""
        path = f"tasks[{t}].trays[{r}].iterations"
        raw = self.config.tasks[t].trays[r].iterations
        return int(self._number(self.task_evaluator(t), raw, path, 1, ITERATIONS))

    def module(self, t: int, r: int, m: int, iteration: int) -> ResolvedModule:
        """Module ``m`` of tray ``r`` of task ``t``, for one iteration."""
        mod = self.config.tasks[t].trays[r].modules[m]
        ev = self.module_evaluator(t, r, m, iteration)
        path = f"tasks[{t}].trays[{r}].modules[{m}]"
        args = self.value(ev, mod.args, f"{path}.args", "")
        try:
            argv = args_to_argv(args)
        except ExpressionError as exc:
            self._fail(f"{path}.args", exc.message)
            argv = []
        params = {
            k: self.value(ev, v, f"{path}.parameters.{k}", soft=True)
            for k, v in mod.parameters.items()
        }
        url = to_text(self.value(ev, mod.url, f"{path}.url"))
        if url_scheme(url) not in MODULE_URL_SCHEMES:
            self._fail(f"{path}.url", f"module code must come over https or from a file: {url!r}")
        configs = self.value(ev, mod.configs, f"{path}.configs", {})
        for name in configs:
            if not plain_file_name(name):
                self._fail(f"{path}.configs", f"a config file needs a plain name, got {name!r}")
        return ResolvedModule(
            name=mod.name,
            src=to_text(self.value(ev, mod.src, f"{path}.src")),
            class_=to_text(self.value(ev, mod.class_, f"{path}.class")),
            url=url,
            argv=tuple(argv),
            env_shell=to_text(self.value(ev, mod.env_shell, f"{path}.env_shell")),
            env_clear=mod.env_clear,
            configs=configs,
            parameters=params,
        )

    def task(self, t: int) -> ResolvedTask:
        """Task ``t`` of this job, resolved."""
        cfg = self.config
        task = cfg.tasks[t]
        tev = self.task_evaluator(t)
        path = f"tasks[{t}]"
        for k, v in task.parameters.items():
            self.value(tev, v, f"{path}.parameters.{k}", soft=True)
        data = self._data(self.dataset, cfg.steering.data, "steering.data")
        data += self._data(tev, task.data, f"{path}.data")
        trays = []
        for r, tray in enumerate(task.trays):
            count = self.iterations(t, r)
            sample = range(count) if self.every_iteration else sorted({0, count - 1})
            for iteration in sample:
                rev = self.tray_evaluator(t, r, iteration)
                rpath = f"{path}.trays[{r}]"
                for k, v in tray.parameters.items():
                    self.value(rev, v, f"{rpath}.parameters.{k}", soft=True)
                env = None
                if tray.env is not None:
                    env = (
                        to_text(self.value(rev, tray.env.name, f"{rpath}.env.name")),
                        to_text(self.value(rev, tray.env.version, f"{rpath}.env.version")),
                    )
                data += self._data(rev, tray.data, f"{rpath}.data")
                modules = []
                for m, mod in enumerate(tray.modules):
                    modules.append(self.module(t, r, m, iteration))
                    mev = self.module_evaluator(t, r, m, iteration)
                    data += self._data(mev, mod.data, f"{rpath}.modules[{m}].data")
                trays.append(ResolvedTray(tray.name, iteration, env, tuple(modules)))
        batchsys = {**cfg.steering.batchsys}
        for system, props in task.batchsys.items():
            batchsys[system] = {**batchsys.get(system, {}), **props}
        unique: dict[tuple[str, str, str], ResolvedData] = {}
        for d in data:
            unique.setdefault((d.remote, d.local, str(d.movement)), d)
        return ResolvedTask(
            job=self.info.job,
            index=t,
            name=task.name,
            depends=self._depends(t),
            requirements=self.requirements(t),
            data=tuple(unique.values()),
            batchsys=self.value(tev, batchsys, f"{path}.batchsys", {}),
            container=to_text(self.value(tev, task.container, f"{path}.container")),
            trays=tuple(trays),
        )

    def _depends(self, t: int) -> tuple[str, ...]:
        tasks = self.config.tasks
        out = []
        for dep in tasks[t].depends:
            if isinstance(dep, int):
                out.append(tasks[dep].name if 0 <= dep < len(tasks) else str(dep))
            else:
                out.append(dep)
        return tuple(out)

    def steering(self) -> None:
        """Evaluate the dataset-level values (for validation): parameters, system, options."""
        cfg = self.config
        for section, values in (
            ("steering.parameters", cfg.steering.parameters),
            ("steering.system", cfg.steering.system),
            ("options", cfg.options),
        ):
            for k, v in values.items():
                self.value(self.dataset, v, f"{section}.{k}", soft=True)


def resolve_task(
    config: DatasetConfig, task: int | str, info: JobInfo | None = None
) -> ResolvedTask:
    """Resolve one task (by index or name) of one job; raises the first located error."""
    index = config.task_index(task) if isinstance(task, str) else task
    return Resolver(config, info or JobInfo()).task(index)


def resolve_at_site(config: DatasetConfig, task: int, info: JobInfo) -> ResolvedTask:
    """``resolve_task`` for a site (``info.system`` holds its values), its failure typed.

    ``JobSpecError`` when the task fails for this job whatever a site supplies: resolved
    again with every ``$system``/``$environ`` value left to the site, it still has an error
    (both with the config's own ``system`` defaults and without them, which a site may
    override). ``SiteSpecError`` otherwise: a site's value took part, another's may not fail.
    """
    try:
        return resolve_task(config, task, info)
    except ExpressionError as exc:
        steering = config.steering.model_copy(update={"system": {}})
        without_defaults = config.model_copy(update={"steering": steering})
        anywhere = _fails_without_site(config, task, info) and _fails_without_site(
            without_defaults, task, info
        )
        raise (JobSpecError if anywhere else SiteSpecError)(str(exc)) from exc


def _fails_without_site(config: DatasetConfig, task: int, info: JobInfo) -> bool:
    """Whether task ``task`` has an error when no site value is known (validation's mode)."""
    problems: list[Problem] = []
    site_free = replace(info, system={}, environ={}, defer_site_values=True)
    try:
        Resolver(config, site_free, problems).task(task)
    except ExpressionError:
        return True
    return any(p.severity == "error" for p in problems)


def resolve_job(config: DatasetConfig, info: JobInfo | None = None) -> list[ResolvedTask]:
    """Resolve every task of one job, in a topological order of the DAG."""
    dag, problems = build_dag([t.name for t in config.tasks], [t.depends for t in config.tasks])
    if dag is None:
        raise ConfigError(problems)
    resolver = Resolver(config, info or JobInfo())
    return [resolver.task(i) for i in dag.order]
