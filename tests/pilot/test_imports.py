"""The pilot runs where only the standard library and httpx are installed: keep it that way.

Of Frazil itself the pilot may import ``frazil.errors``, the wire format (``frazil.wire``),
the log format (``frazil.logs``), its own modules, and the shared HTTP client
(``frazil.client``, see STYLE.md), whose imports are held to the same rule in turn.
"""

import ast
import sys
from pathlib import Path

import frazil

PACKAGE = Path(frazil.__file__).parent
ALLOWED_FRAZIL = ("frazil.errors", "frazil.wire", "frazil.logs", "frazil.pilot", "frazil.client")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports"
            assert node.module is not None
            names.append(node.module)
    return names


def _files(module: str) -> list[Path]:
    """The source files of a ``frazil.…`` module or package (none if it does not exist)."""
    base = PACKAGE.parent.joinpath(*module.split("."))
    if base.is_dir():
        return sorted(base.rglob("*.py"))
    return [base.with_suffix(".py")] if base.with_suffix(".py").is_file() else []


def test_the_pilot_imports_only_the_stdlib_httpx_and_allowed_frazil_modules() -> None:
    files = _files("frazil.pilot")
    assert files
    seen: set[Path] = set()
    offending: list[str] = []
    while files:
        path = files.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top == "httpx" or name == "frazil":
                continue
            if name.startswith(ALLOWED_FRAZIL):
                files.extend(_files(name))  # what the pilot imports must obey the rule too
                continue
            offending.append(f"{path.relative_to(PACKAGE.parent)}: {name}")
    assert offending == []
