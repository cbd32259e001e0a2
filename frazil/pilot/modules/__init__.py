"""Modules: the configurable steps a task runs (IPModule of "The IceProd Framework", §3.3-3.4).

``Module`` is the base class (``base``); the built-in modules copy files and handle tarballs
(``files``) and run scripts (``script``); ``find_module_class`` resolves a name from a config
(``registry``).
"""

from frazil.pilot.modules.base import REQUIRED, Module, ModuleError, Param, ParameterError
from frazil.pilot.modules.files import CopyFiles, MakeTarball, UnpackTarball, unsafe_member
from frazil.pilot.modules.registry import BUILTIN_MODULES, find_module_class
from frazil.pilot.modules.script import RunScript, ScriptFailed

__all__ = [
    "BUILTIN_MODULES",
    "REQUIRED",
    "CopyFiles",
    "MakeTarball",
    "Module",
    "ModuleError",
    "Param",
    "ParameterError",
    "RunScript",
    "ScriptFailed",
    "UnpackTarball",
    "find_module_class",
    "unsafe_member",
]
