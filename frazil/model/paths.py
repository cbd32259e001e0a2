"""How a place in a config is written: ``tasks[1].trays[0].modules[2].args``."""

from __future__ import annotations

import json
from collections.abc import Sequence


def join_path(path: str, part: str | int) -> str:
    """``path`` extended by a key or an index."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    if part.isidentifier():
        return f"{path}.{part}" if path else part
    return f"{path}[{json.dumps(part)}]"


def format_path(parts: Sequence[str | int]) -> str:
    """``("tasks", 1, "trays", 0, "name")`` → ``tasks[1].trays[0].name``."""
    path = ""
    for part in parts:
        path = join_path(path, part)
    return path
