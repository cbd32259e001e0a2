"""Classes for find_module_class to find by dotted path."""

from collections.abc import Mapping
from typing import ClassVar

from frazil.pilot.modules import REQUIRED, Module, Param


class Greeter(Module):
    """Counts the letters of a greeting."""

    parameters: ClassVar[Mapping[str, Param]] = {
        "name": Param(REQUIRED, "who to greet"),
        "greeting": Param("hello", "what to say"),
    }

    def run(self, stats: dict[str, float]) -> None:
        text = f"{self.param_str('greeting')} {self.param_str('name')}"
        stats["letters"] = float(len(text.replace(" ", "")))


class Outer:
    class Inner(Greeter):
        """A module nested in a class."""


class NotAModule:
    """Looks like a module, is not one."""

    def run(self, stats: dict[str, float]) -> None:
        pass


not_a_class = 42
