"""Records passed between the services and their callers (frozen, typed, no I/O).

The shapes that also cross the network (claims, usage, files) are the wire format's, named
once in ``frazil.wire`` and re-exported here for the services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from frazil.wire import Claim, DagTask, FileRecord, JobClaim, Slot, StatSummary, Usage


@dataclass(frozen=True, kw_only=True)
class SiteResources(Slot):
    """What one slot of the site ``name`` offers (a site's slot, or what a pilot has left)."""

    name: str = ""

    def __post_init__(self) -> None:
        """Made from a checked slot, or from what a pilot has left (which may be no core):
        not checked again."""


def attribute_matches(required: Any, offered: Any) -> bool:
    """Whether a site attribute satisfies a task's extra requirement.

    ``true`` asks for a truthy attribute, a list accepts any of its items, a number asks for
    at least that much, anything else must be equal.
    """
    if required is True:
        return bool(offered)
    if isinstance(required, list):
        return offered in required
    if isinstance(required, int | float) and not isinstance(required, bool):
        return (
            isinstance(offered, int | float)
            and not isinstance(offered, bool)
            and (offered >= required)
        )
    return bool(required == offered)


def extras_fit(required: Mapping[str, Any], site: SiteResources) -> bool:
    """Whether every extra requirement of a task is met by the site's attributes."""
    return all(
        key in site.attributes and attribute_matches(value, site.attributes[key])
        for key, value in required.items()
    )


__all__ = [
    "Claim", "DagTask", "FileRecord", "JobClaim", "SiteResources", "StatSummary", "Usage",
    "attribute_matches", "extras_fit",
]  # fmt: skip
