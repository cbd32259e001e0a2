"""A dataset's retry and timeout rules, read from its config's ``options``.

``options`` keys (all optional)::

    max_failures: 5          # failures before a task is failed for good
    debug: false             # a failure suspends the task instead of retrying it
    timeouts:
      queued: 3d             # in the batch queue without a pilot report
      processing: 2d         # running, counted from the pilot's start
      heartbeat: 30m         # silence from a running pilot

A duration is a number of seconds or a number with a unit: ``s``, ``m``, ``h``, ``d``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from frazil.errors import Problem
from frazil.model.limits import DURATION, MAX_FAILURES, shown
from frazil.model.states import TaskStatus

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


@dataclass(frozen=True)
class Policy:
    """Retry and timeout rules for the tasks of one dataset. Durations are in seconds."""

    max_failures: int = 5
    debug: bool = False
    queued_timeout: float = 3 * 86400.0
    processing_timeout: float = 2 * 86400.0
    heartbeat_timeout: float = 1800.0


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``2.5``, ``"30m"``, ``"2h"`` or ``"3d"``, within ``DURATION``;
    ``ValueError`` otherwise."""
    seconds = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if seconds is None:
        raise ValueError(f"expected a duration such as 90, '30m', '2h' or '3d', got {shown(value)}")
    if DURATION.problem(seconds) is not None:
        raise ValueError(
            f"a duration must be from {DURATION.low:g} s to {DURATION.high / 86400:g} days, "
            f"got {shown(value)}"
        )
    return float(seconds)


def policy_from_options(options: Mapping[str, Any]) -> tuple[Policy, list[Problem]]:
    """The policy that ``options`` asks for, and a problem for each value it cannot use."""
    problems: list[Problem] = []
    default = Policy()
    max_failures = options.get("max_failures", default.max_failures)
    problem = MAX_FAILURES.problem(max_failures) if isinstance(max_failures, int) else None
    if problem is not None or not isinstance(max_failures, int):
        problem = problem or f"must be {MAX_FAILURES.describe()}, got {shown(max_failures)}"
        problems.append(Problem("options.max_failures", problem))
        max_failures = default.max_failures
    debug = options.get("debug", default.debug)
    if not isinstance(debug, bool):
        problems.append(Problem("options.debug", f"must be true or false, got {debug!r}"))
        debug = default.debug
    timeouts: dict[str, float] = {
        "queued": default.queued_timeout,
        "processing": default.processing_timeout,
        "heartbeat": default.heartbeat_timeout,
    }
    given = options.get("timeouts", {})
    if not isinstance(given, Mapping):
        problems.append(Problem("options.timeouts", "must be a mapping of state to duration"))
        given = {}
    for key, value in given.items():
        if key not in timeouts:
            problems.append(
                Problem(
                    f"options.timeouts.{key}",
                    "unknown timeout; known: " + ", ".join(sorted(timeouts)),
                )
            )
            continue
        try:
            timeouts[key] = parse_duration(value)
        except ValueError as exc:
            problems.append(Problem(f"options.timeouts.{key}", str(exc)))
    policy = Policy(
        max_failures=max_failures,
        debug=debug,
        queued_timeout=timeouts["queued"],
        processing_timeout=timeouts["processing"],
        heartbeat_timeout=timeouts["heartbeat"],
    )
    return policy, problems


def status_after_failure(failures: int, policy: Policy, *, final: bool = False) -> TaskStatus:
    """Where a task goes after a failure, given its failure count including this one.

    In debug mode every failure suspends the task so that a person can look at it; otherwise
    the task is retried (``waiting``) until it has failed ``max_failures`` times, or fails at
    once when the failure is ``final`` (no retry could end otherwise).
    """
    if policy.debug:
        return TaskStatus.SUSPENDED
    if final or failures >= policy.max_failures:
        return TaskStatus.FAILED
    return TaskStatus.WAITING
