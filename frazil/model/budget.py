"""A budget of time for checking a config, spent between the values that the check evaluates.

The clock is passed in (``time.process_time`` in the process that checks a config), so the
budget counts the CPU time of the check itself, whatever else the machine runs.
"""

from __future__ import annotations

from collections.abc import Callable

from frazil.errors import BudgetExceeded


class Budget:
    """``seconds`` of ``clock`` from now; ``name`` says which budget it is, for the error."""

    def __init__(self, seconds: float, clock: Callable[[], float], name: str) -> None:
        self.seconds = seconds
        self.name = name
        self._clock = clock
        self._start = clock()
        #: where the check was at its last look at the budget, for an error that stops it
        #: from outside (a kernel limit)
        self.path = ""
        self.doing = "reading the config"

    def used(self) -> float:
        """Seconds spent since the budget was made."""
        return self._clock() - self._start

    def left(self) -> float:
        """Seconds still to spend (negative once overspent)."""
        return self.seconds - self.used()

    def spend(self, path: str = "", doing: str = "") -> None:
        """Go on if there is time left; else ``BudgetExceeded`` located at ``path``."""
        self.path, self.doing = path, doing
        if self.used() > self.seconds:
            raise BudgetExceeded(self.name, path, doing)
