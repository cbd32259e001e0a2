"""Submit-script headers kept as data until rendered, for every script plugin.

A plugin builds its default header lines (``#PBS -l walltime=01:30:00``, ``--mem=4096M``,
``request_cpus = 2``) from a ``JobRequest``; the site's ``SiteLines`` then drops the defaults
it does not want (``skip``: prefixes of whole lines) and appends its own (``extra``), followed
by the request's own ``extra`` lines. Nothing is parsed back: a skipped default and its
replacement are plain text.

``shell_script`` renders the part every shell-based batch script shares (Slurm, Grid Engine,
PBS, LSF): the header, then ``cd`` to the workdir, the environment, and an ``exec`` of the
argv, all quoted for ``/bin/sh``. ``minutes``, ``hms`` and ``mebibytes`` turn a request's
hours and GB into the units schedulers take, always rounding up.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from frazil.batch.base import JobRequest
from frazil.errors import BatchError


@dataclass(frozen=True)
class SiteLines:
    """A site's changes to a plugin's default header lines.

    ``skip`` holds prefixes: a default line whose text (leading blanks ignored) starts with
    any of them is dropped. ``extra`` lines are appended verbatim after the defaults, so a
    site can replace a default by skipping it and adding its own. Skip never applies to
    extra lines. A line break inside any of them raises ``BatchError``.
    """

    extra: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", single_lines(self.extra, "extra line"))
        object.__setattr__(self, "skip", single_lines(self.skip, "skip prefix"))
        if any(not prefix.strip() for prefix in self.skip):
            raise BatchError("an empty skip prefix would drop every header line")

    def render(self, defaults: Iterable[str], request_extra: Iterable[str] = ()) -> list[str]:
        """The defaults minus the skipped ones, then the site's extra, then the request's."""
        kept = [line for line in defaults if not self.skips(line)]
        return [*kept, *self.extra, *single_lines(request_extra, "request extra line")]

    def skips(self, line: str) -> bool:
        """Whether ``line`` is dropped by one of the skip prefixes."""
        text = line.lstrip()
        return any(text.startswith(prefix.lstrip()) for prefix in self.skip)


def single_lines(lines: Iterable[str], what: str) -> tuple[str, ...]:
    """``lines`` as a tuple; raises ``BatchError`` if one is not a string or spans lines."""
    result = tuple(lines)
    for line in result:
        if not isinstance(line, str) or any(c in line for c in "\r\n\0"):
            raise BatchError(f"{what} {line!r} is not a single line of text")
    return result


def shell_script(header: Sequence[str], request: JobRequest, shell: str = "/bin/sh") -> str:
    """A complete batch script: shebang, ``header``, cd, exports, then ``exec`` of the argv.

    The header comes first and nothing else precedes it, since schedulers stop reading
    directives at the first command line.
    """
    lines = [f"#!{shell}", *header]
    lines.append(f"cd {shlex.quote(str(request.workdir))} || exit 1")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in request.env.items()]
    lines.append("exec " + shlex.join(request.argv))
    return "\n".join(lines) + "\n"


def minutes(hours: float) -> int:
    """A walltime in whole minutes, rounded up (a limit must never be shorter than asked)."""
    return max(1, math.ceil(round(hours * 60.0, 6)))


def hms(hours: float, hour_digits: int = 2) -> str:
    """A walltime as ``HH:MM:SS`` (hours may exceed 24), rounded up to whole seconds.

    ``hour_digits`` is the least number of digits of the hours (``hms(1.5, 1) == "1:30:00"``).
    """
    seconds = max(1, math.ceil(round(hours * 3600.0, 6)))
    return f"{seconds // 3600:0{hour_digits}d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def mebibytes(gb: float) -> int:
    """A size given in GB (2**30 bytes) in whole MiB, rounded up."""
    return max(1, math.ceil(round(gb * 1024.0, 6)))
