"""IPModule of "The IceProd Framework" (§3.3): a configurable step of a job with a common interface.

A module declares its parameters once, as data, so that a misspelt or forgotten parameter is
refused when the module is built, before anything has run::

    class CountEvents(Module):
        parameters = {
            "input": Param(REQUIRED, "file to read"),
            "cut": Param(0.5, "minimum energy in TeV"),
        }

        def run(self, stats: dict[str, float]) -> None:
            stats["events"] = float(count(self.path(self.param_str("input"))))

``run`` adds what it wants recorded to ``stats``; the pilot measures time and CPU around it, so
the base class measures nothing itself.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from frazil.errors import FrazilError


class ModuleError(FrazilError):
    """A module was misconfigured, could not be found, or failed while running."""


class ParameterError(ModuleError):
    """A module was given an unknown parameter, lacks a required one, or got a wrong type."""


class _Required:
    """Marks a parameter without a default."""

    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a parameter that must be given.
REQUIRED: Final = _Required()


@dataclass(frozen=True)
class Param:
    """A parameter a module takes: its default (``REQUIRED`` for none) and what it means."""

    default: object = REQUIRED
    help: str = ""

    @property
    def required(self) -> bool:
        """Whether the parameter has no default and must be given."""
        return self.default is REQUIRED


class Module:
    """Base class of every module; subclasses declare ``parameters`` and implement ``run``.

    Parameters declared by base classes are inherited; a subclass may redeclare one to change
    its default. ``workdir`` is the task's directory, which relative paths are taken from.
    """

    #: Name → declaration, as written in the subclass itself (see ``all_parameters``).
    parameters: ClassVar[Mapping[str, Param]] = {}
    _declared: ClassVar[dict[str, Param]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        merged: dict[str, Param] = {}
        for klass in reversed(cls.__mro__):
            own = vars(klass).get("parameters", {})
            for name, declaration in own.items():
                if not isinstance(declaration, Param):
                    raise TypeError(f"{cls.__name__}.parameters[{name!r}] must be a Param")
                merged[name] = declaration
        cls._declared = merged

    def __init__(
        self,
        params: Mapping[str, object] | None = None,
        *,
        workdir: str | Path | None = None,
        name: str | None = None,
    ) -> None:
        """Check ``params`` against the declarations; ``name`` labels errors (the tray's name)."""
        self.name = name or type(self).__name__
        given = dict(params or {})
        declared = self._declared
        unknown = sorted(set(given) - set(declared))
        if unknown:
            known = ", ".join(sorted(declared)) or "none"
            raise ParameterError(
                f"module {self.name}: unknown parameter(s) {', '.join(unknown)}; known: {known}"
            )
        missing = [key for key, p in declared.items() if p.required and key not in given]
        if missing:
            raise ParameterError(
                f"module {self.name}: missing required parameter(s) " + ", ".join(missing)
            )
        self.params: dict[str, object] = {
            key: given[key] if key in given else copy.deepcopy(p.default)
            for key, p in declared.items()
        }
        self.workdir = Path(workdir) if workdir is not None else Path()
        self.check()

    def check(self) -> None:
        """Check the parameters' types (via the ``param_*`` views); called by ``__init__``.

        Subclasses override it so that a wrong type is refused before anything runs.
        """

    @classmethod
    def all_parameters(cls) -> dict[str, Param]:
        """Every parameter the module takes, inherited ones included."""
        return dict(cls._declared)

    def run(self, stats: dict[str, float]) -> None:
        """Do the module's work, adding anything worth recording to ``stats``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run()")

    def path(self, value: str) -> Path:
        """``value`` as a path: relative ones are taken from the working directory."""
        return self.workdir / value

    # Typed views of parameters. Values come from JSON configs, so they are checked here and a
    # wrong type becomes a ParameterError naming the module and the parameter.

    def param_str(self, key: str) -> str:
        """A string parameter (numbers are accepted and converted)."""
        value = self.params[key]
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise self._wrong(key, "a string", value)

    def param_strs(self, key: str, *, split: bool = False) -> list[str]:
        """A list of strings; one string counts as a list of one (or is split like a shell)."""
        value = self.params[key]
        if isinstance(value, str):
            return shlex.split(value) if split else [value]
        if isinstance(value, list | tuple) and all(
            isinstance(item, str | int | float) and not isinstance(item, bool) for item in value
        ):
            return [str(item) for item in value]
        raise self._wrong(key, "a string or a list of strings", value)

    def param_float(self, key: str) -> float:
        """A number parameter (numeric strings are accepted)."""
        value = self.params[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise self._wrong(key, "a number", value)

    def param_bool(self, key: str) -> bool:
        """A true/false parameter (also "true"/"false", "yes"/"no", "1"/"0")."""
        value = self.params[key]
        if isinstance(value, bool):
            return value
        words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        if isinstance(value, str | int) and str(value).strip().lower() in words:
            return words[str(value).strip().lower()]
        raise self._wrong(key, "true or false", value)

    def param_mapping(self, key: str) -> dict[str, str]:
        """A mapping of names to strings (numbers are converted)."""
        value = self.params[key]
        if isinstance(value, Mapping) and all(
            isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
            for k, v in value.items()
        ):
            return {k: str(v) for k, v in value.items()}
        raise self._wrong(key, "a mapping of names to strings", value)

    def _wrong(self, key: str, expected: str, value: object) -> ParameterError:
        return ParameterError(
            f"module {self.name}: parameter {key} must be {expected}, got {value!r}"
        )
