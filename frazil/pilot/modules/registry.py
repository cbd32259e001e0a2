"""Finding a module class by name: a built-in one, or any importable ``Module`` subclass.

External modules ("The IceProd Framework", §3.4) are shipped to the node as files by the
server; once their directory is importable, they are named like any other class,
``package.module:Class``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from types import MappingProxyType

from frazil.pilot.modules.base import Module, ModuleError
from frazil.pilot.modules.files import CopyFiles, MakeTarball, UnpackTarball
from frazil.pilot.modules.script import RunScript

log = logging.getLogger(__name__)

#: The modules every pilot has, by the name a config uses.
BUILTIN_MODULES: Mapping[str, type[Module]] = MappingProxyType(
    {cls.__name__: cls for cls in (CopyFiles, MakeTarball, UnpackTarball, RunScript)}
)


def find_module_class(name: str) -> type[Module]:
    """The ``Module`` subclass called ``name``.

    ``name`` is a built-in module's name (``"CopyFiles"``), or a dotted path to a class,
    ``"package.module:Class"`` or ``"package.module.Class"``. Raises ``ModuleError`` when
    nothing by that name can be imported or when it is not a ``Module`` subclass.
    """
    name = name.strip()
    if name in BUILTIN_MODULES:
        return BUILTIN_MODULES[name]
    if ":" in name:
        module_name, _, attribute = name.partition(":")
    else:
        module_name, _, attribute = name.rpartition(".")
    if not module_name or not attribute:
        builtins = ", ".join(BUILTIN_MODULES)
        raise ModuleError(
            f"unknown module {name!r}: not a built-in module ({builtins}) "
            "nor a dotted path such as package.module:Class"
        )
    try:
        found: object = importlib.import_module(module_name)
    except Exception as exc:  # user code: a SyntaxError or anything else raised on import
        raise ModuleError(f"module class {name!r}: cannot import {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ModuleError(f"module class {name!r}: {module_name} has no {attribute}") from None
    if not (isinstance(found, type) and issubclass(found, Module)) or found is Module:
        raise ModuleError(f"{name!r} is not a module: {found!r} is not a subclass of Module")
    log.debug("module class %s is %r", name, found)
    return found
