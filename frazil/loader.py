"""Reading dataset configs from YAML or JSON, with every problem located by path and line.

``inspect_text`` never raises for a bad config: it returns a ``Report`` (and the config when
the shape was right). ``load_config`` raises ``ConfigError`` when there is any error.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from frazil.errors import BudgetExceeded, ConfigError, Problem
from frazil.model.paths import format_path
from frazil.model.resolve import JobInfo, Resolver
from frazil.model.spec import MODEL_FOR_KEY, DatasetConfig
from frazil.model.urls import url_scheme
from frazil.model.validate import Plan, Report, check_config

#: Refuse configs larger than this (a config is a description, not data).
MAX_CONFIG_BYTES = 16 * 1024 * 1024
#: Refuse documents deeper than this, or with more values (YAML aliases expand where used).
MAX_NESTING = 100
MAX_VALUES = 1_000_000


@dataclass(frozen=True)
class Inspection:
    """The outcome of reading a config: the model (if its shape was right) and a report."""

    config: DatasetConfig | None
    report: Report
    source: str


class _LineMap:
    """Line numbers of YAML nodes by path, and duplicate keys found on the way.

    Built from a node tree, or from a function that composes one, called when a line is first
    asked for (a JSON config that has no problem is never composed as YAML, which is slow).
    """

    def __init__(self, tree: yaml.Node | Callable[[], yaml.Node | None] | None = None) -> None:
        self.lines: dict[str, int] = {}
        self.duplicates: list[Problem] = []
        self._tree = tree
        if isinstance(tree, yaml.Node):
            self._load()

    def _load(self) -> None:
        tree, self._tree = self._tree, None
        node = tree() if callable(tree) else tree
        if node is not None:
            self.walk(node, [])

    def walk(self, node: yaml.Node, parts: list[str | int]) -> None:
        self.lines.setdefault(format_path(parts), node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                path = format_path([*parts, key])
                if key in seen:
                    self.duplicates.append(
                        Problem(path, f"duplicate key {key!r} (first on line {seen[key]})", line)
                    )
                    continue
                seen[key] = line
                self.lines[path] = line
                self.walk(value_node, [*parts, key])
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, [*parts, i])

    def line(self, path: str) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        if self._tree is not None:
            self._load()
        while True:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                return self.lines.get(path)
            path = path[:cut]


def _parse(
    text: str, fmt: str
) -> tuple[Any, yaml.Node | Callable[[], yaml.Node | None] | None, list[Problem]]:
    """The data, its YAML node tree (for line numbers) or a function that composes it when a
    line is needed, or the problem that stopped reading."""
    node: yaml.Node | None = None
    try:
        if fmt == "json":
            duplicated = False

            def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
                nonlocal duplicated
                mapping = dict(items)
                duplicated = duplicated or len(mapping) != len(items)
                return mapping

            try:
                data = json.loads(text, object_pairs_hook=pairs)
            except json.JSONDecodeError as exc:
                return None, None, [Problem("", f"JSON syntax error: {exc.msg}", exc.lineno)]

            def compose() -> yaml.Node | None:
                with contextlib.suppress(yaml.YAMLError):  # JSON that YAML cannot read: no lines
                    return yaml.compose(text, Loader=yaml.SafeLoader)
                return None

            # a duplicate key is a problem to report (found while composing): compose now
            return data, (compose() if duplicated else compose), []
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, None, [Problem("", f"YAML syntax error: {exc.problem or exc}", line)]
    except yaml.YAMLError as exc:
        return None, None, [Problem("", f"YAML error: {exc}")]
    except RecursionError:
        return None, None, [Problem("", f"nested deeper than {MAX_NESTING} levels")]
    except ValueError as exc:  # Python refuses integers of more than 4300 digits
        why = "a number has too many digits" if "digits" in str(exc) else str(exc)
        return None, None, [Problem("", f"cannot read a value: {why}")]
    return data, node, []


def _not_json(value: Any) -> str | None:
    """Why a parsed value cannot be part of a config (configs are JSON documents), or None."""
    if isinstance(value, str):
        if "\0" in value:
            return "text holds a NUL character"
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            return "text holds a lone surrogate (not valid Unicode)"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if value is None or isinstance(value, bool | int | float | list | dict):
        return None
    kind = {"date": "a date", "datetime": "a timestamp", "bytes": "binary data"}.get(
        type(value).__name__, f"a {type(value).__name__}"
    )
    return f"{kind} is not a JSON value; quote it to keep it as text"


def _values(data: Any) -> Iterator[tuple[list[str | int], Any, bool]]:
    """Every value and mapping key of ``data`` with its path and whether it is a key.

    Depth first and without recursion, so that deep documents cannot exhaust the stack.
    """
    stack: list[tuple[list[str | int], Any]] = [([], data)]
    while stack:
        parts, value = stack.pop()
        yield parts, value, False
        if isinstance(value, dict):
            for key, item in reversed(value.items()):
                yield [*parts, str(key)], key, True
                stack.append(([*parts, str(key)], item))
        elif isinstance(value, list):
            stack.extend(([*parts, i], item) for i, item in reversed(list(enumerate(value))))


def _data_problems(data: Any) -> tuple[list[Problem], bool]:
    """Values a config cannot hold, and whether the document is too deep or too big to check.

    The walk is bounded, so that a YAML alias that refers to itself or a "billion laughs"
    document of aliases is reported instead of recursing or expanding without end.
    """
    problems: list[Problem] = []
    for count, (parts, value, is_key) in enumerate(_values(data)):
        if count >= MAX_VALUES:
            message = f"more than {MAX_VALUES} values (YAML aliases expand wherever they are used)"
            return [Problem("", message)], True
        if len(parts) > MAX_NESTING:
            message = f"nested deeper than {MAX_NESTING} levels (or a YAML alias refers to itself)"
            return [Problem(format_path(parts[:8]), message)], True
        if is_key and not isinstance(value, str):
            why: str | None = f"the key {value!r} is not text; quote it"
        else:
            why = _not_json(value)
        if why is not None:
            problems.append(Problem(format_path(parts), why))
    return problems, False


def _data_parts(data: Any, loc: Sequence[str | int]) -> list[str | int]:
    """The part of a pydantic error location that exists in the data (drops union tags)."""
    parts: list[str | int] = []
    here = data
    for k, part in enumerate(loc):
        in_map = isinstance(here, Mapping) and part in here
        in_list = isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here)
        if in_map or in_list:
            here = here[part]
            parts.append(part)
        elif k == len(loc) - 1 and isinstance(here, Mapping) and isinstance(part, str):
            parts.append(part)  # a required key that is missing
    return parts


def _suggestion(parts: Sequence[str | int], key: str) -> str:
    owner = next((p for p in reversed(parts[:-1]) if isinstance(p, str)), "")
    model = MODEL_FOR_KEY.get(owner if owner in MODEL_FOR_KEY else "", None)
    if model is None or owner in ("parameters", "options", "system", "batchsys", "configs"):
        return ""
    known = [f.alias or name for name, f in model.model_fields.items()]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (allowed: {', '.join(sorted(known))})"


def _shape_problems(exc: ValidationError, data: Any) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        parts = _data_parts(data, error["loc"])
        path = format_path(parts)
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(parts[-1]) if parts else "?"
            message = f"unknown key {key!r}" + _suggestion(parts, key)
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problem = Problem(path, message)
        if problem not in problems:
            problems.append(problem)
    return problems


def _pruned(data: Any, problems: list[Problem]) -> DatasetConfig | None:
    """The config without the keys that broke its shape, if that is enough to build one.

    Lets the deeper checks (dependencies, expressions) report their problems in the same
    run as the shape problems, instead of one round of fixes later.
    """
    if not isinstance(data, Mapping):
        return None
    pruned = copy.deepcopy(data)
    for _ in range(5):
        try:
            return DatasetConfig.model_validate(pruned)
        except ValidationError as exc:
            removed = False
            for error in exc.errors(include_url=False):
                parts = _data_parts(pruned, error["loc"])
                if error["type"] == "missing" or not parts:
                    return None
                parent: Any = pruned
                for part in parts[:-1]:
                    parent = parent[part]
                if isinstance(parent, dict) and parts[-1] in parent:
                    del parent[parts[-1]]
                    removed = True
            if not removed:
                return None
    return None


def _line(lines: _LineMap, path: str) -> int | None:
    """Where ``path`` is written; a problem with the whole document is on its first line."""
    line = lines.line(path)
    return 1 if line is None and not path else line


_SYSTEM = re.compile(r"\$system\(\s*([^()\s]+)\s*\)")


def _found_here(value: str, here: Sequence[Path]) -> Path | None:
    """Where a relative path a pilot must read lies on this machine (None: it is absolute,
    a URL, a site value not known yet, or not found here)."""
    path = urlsplit(value).path if url_scheme(value) == "file" else value
    if not path or path.startswith("$") or url_scheme(path) != "" or Path(path).is_absolute():
        return None
    return next((d / path for d in here if (d / path).exists()), None)


def local_path_problems(config: DatasetConfig, job: int, here: Sequence[Path]) -> list[Problem]:
    """Warnings for the paths a pilot must read (a module's ``src``, ``env_shell`` and code
    ``url``) that are relative and lie in one of the directories ``here`` of this machine:
    they resolve on the submitting machine only, and the site's pilots will not find them.
    A path the task brings along itself (an input file's or a config file's name) is fine.

    A path that a ``$system`` default of the config makes relative is reported once, at that
    default: a site's ``[system]`` value of that name is what its pilots will read.
    """
    info = JobInfo(job=job, jobs_submitted=job + 1, defer_site_values=True)
    resolver = Resolver(config, info, [], every_iteration=False)
    problems: list[Problem] = []
    by_default: dict[str, list[str]] = {}
    defaults = config.steering.system
    for t, task in enumerate(config.tasks):
        brought = {d.local for d in resolver.task(t).data if d.movement != "output"}
        for r, tray in enumerate(task.trays):
            for m, raw in enumerate(tray.modules):
                module = resolver.module(t, r, m, 0)
                name = module.name or (module.src or module.class_).rsplit("/", 1)[-1]
                brought_here = brought | set(module.configs)
                for key, value, written in (
                    ("src", module.src, raw.src), ("env_shell", module.env_shell, raw.env_shell),
                    ("url", module.url, raw.url),
                ):  # fmt: skip
                    where = None if value in brought_here else _found_here(value, here)
                    if where is None:
                        continue
                    system = next(
                        (k for k in _SYSTEM.findall(written)
                         if isinstance(defaults.get(k), str) and _found_here(defaults[k], here)),
                        None,
                    )  # fmt: skip
                    if system is not None:
                        uses = by_default.setdefault(system, [])
                        uses += [] if name in uses else [name]
                        continue
                    problems.append(Problem(
                        f"tasks[{t}].trays[{r}].modules[{m}].{key}",
                        f"module {name!r}: {value!r} is a relative path that resolves on this "
                        f"machine only ({where}): the site will not see it; use an absolute "
                        "path the site's nodes see, a URL, or a $system value the site sets",
                        severity="warning",
                    ))  # fmt: skip
    for key, uses in by_default.items():
        names = ", ".join(uses[:4]) + (f" and {len(uses) - 4} more" if len(uses) > 4 else "")
        problems.append(Problem(
            f"steering.system.{key}",
            f"{defaults[key]!r} is a relative path that resolves on this machine only: the "
            f"site will not see it, and the modules {names} run from it; a site must set "
            f"[system] {key} to a path its nodes see",
            severity="warning",
        ))  # fmt: skip
    return problems


def inspect_text(
    text: str,
    source: str = "<config>",
    fmt: str | None = None,
    *,
    job: int = 0,
    plan: Plan | None = None,
    here: Sequence[Path] = (),
) -> Inspection:
    """Parse and check a config; every problem carries its path and, where known, its line.

    ``plan`` says which jobs to check and with what budget (job ``job`` by default); a check
    that uses up its budget is reported as a problem where it stopped. ``here``: directories
    of the submitting machine (``frazil validate``: the config's and the current one) where
    a relative path a pilot must read would be found; such a path is a warning
    (``local_path_problems``). The server passes none: its own files are not the question.
    """
    plan = plan or Plan(jobs=range(job, job + 1))
    fmt = fmt or ("json" if source.endswith(".json") or text.lstrip().startswith("{") else "yaml")
    data, tree, problems = _parse(text, fmt)  # problems here: the text could not be read
    lines = _LineMap()
    if not problems:
        problems, unbounded = _data_problems(data)
        if not unbounded:
            lines = _LineMap(tree)
    config: DatasetConfig | None = None
    readable = not problems
    problems += lines.duplicates
    if readable:
        if not isinstance(data, Mapping):
            problems.append(Problem("", "a dataset config must be a mapping at the top level"))
        else:
            try:
                config = DatasetConfig.model_validate(data)
            except ValidationError as exc:
                problems += _shape_problems(exc, data)
    report = Report(tuple(problems))
    checkable = config if config is not None else _pruned(data, problems) if readable else None
    if checkable is not None:
        try:
            if plan.budget is not None:
                plan.budget.spend("", "reading the config")
            checked = check_config(checkable, plan=plan)
        except BudgetExceeded as exc:  # one problem: where the check stopped
            checked = Report((Problem(exc.path, str(exc)),))
        merged = list(problems)
        merged += [p for p in checked.problems if p not in merged]
        if here and config is not None:
            merged += local_path_problems(config, plan.jobs.start, here)
        report = replace(checked, problems=tuple(merged))
    located = tuple(
        p if p.line is not None else replace(p, line=_line(lines, p.path)) for p in report.problems
    )
    return Inspection(config, replace(report, problems=located), source)


def inspect_file(path: str | Path, *, job: int = 0, here: Sequence[Path] = ()) -> Inspection:
    """``inspect_text`` on a file; an unreadable file is reported as a problem."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            problem = Problem("", f"file is {size} bytes; the limit is {MAX_CONFIG_BYTES}")
            return Inspection(None, Report((problem,)), str(p))
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Inspection(None, Report((Problem("", f"cannot read the file: {exc}"),)), str(p))
    fmt = "json" if p.suffix.lower() == ".json" else "yaml"
    return inspect_text(text, str(p), fmt, job=job, here=here)


def load_config(path: str | Path) -> DatasetConfig:
    """The config in ``path``; ``ConfigError`` listing every error if it has any."""
    inspection = inspect_file(path)
    if inspection.config is None or not inspection.report.ok:
        raise ConfigError(list(inspection.report.errors), inspection.source)
    return inspection.config


def locate(problems: Sequence[Problem], text: str, source: str = "<config>") -> list[Problem]:
    """``problems`` found in a config's ``text`` by someone else, with the lines their paths
    are written on where known."""
    fmt = "json" if source.endswith(".json") or text.lstrip().startswith("{") else "yaml"
    _, tree, trouble = _parse(text, fmt)
    lines = _LineMap(None if trouble else tree)
    return [p if p.line is not None else replace(p, line=_line(lines, p.path)) for p in problems]
