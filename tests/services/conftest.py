"""Fixtures of the contract suite (the ``db`` fixture itself lives in tests/conftest.py)."""

from __future__ import annotations

from frazil.model.spec import DatasetConfig
from tests.conftest import BACKENDS, fresh_server  # noqa: F401 - re-exported for older imports


def make_config(shape: str = "chain", n: int = 3, **task_extra) -> DatasetConfig:
    """A small config: ``chain`` (t0 <- t1 <- ...), ``diamond`` (a -> b, c -> d) or ``flat``."""

    def task(name, depends=(), **extra):
        return {
            "name": name,
            "depends": list(depends),
            "trays": [{"modules": [{"src": "run.sh", "args": "$args(job)"}]}],
            **task_extra,
            **extra,
        }

    if shape == "chain":
        tasks = [task(f"t{i}", [f"t{i - 1}"] if i else []) for i in range(n)]
    elif shape == "diamond":
        tasks = [task("a"), task("b", ["a"]), task("c", ["a"]), task("d", ["b", "c"])]
    else:
        tasks = [task(f"t{i}") for i in range(n)]
    return DatasetConfig.model_validate(
        {"description": f"{shape} test", "options": {"max_failures": 3}, "tasks": tasks}
    )
