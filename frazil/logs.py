"""Log records that text from users and pilots cannot forge or use to drive a terminal.

A path, a name or an error text in a log message is somebody else's text: a newline in it
would start what looks like a record of its own, and escape codes would reach the terminal of
whoever reads the log. ``LogFormatter`` writes out the control characters of each message
(``\\x0a``), so a record's first line is all of its message, and indents the lines of a
traceback under it (``  | ``), so that no line of it can pass for a record either.
"""

from __future__ import annotations

import logging
import re
import sys
from types import TracebackType
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """``text`` with every control character written out (``\\x0a`` for a newline, ``\\x1b``
    for an escape); tabs stay."""
    return _CONTROL.sub(_visible, text)


def visible(text: str) -> str:
    """``text`` with its control characters but tabs and newlines written out."""
    return _CONTROL_BUT_NEWLINE.sub(_visible, text)


class LogFormatter(logging.Formatter):
    """One line per message; tracebacks and stacks follow it, indented."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return one_line(super().formatMessage(record))

    def formatException(  # noqa: N802 - logging's name
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("  | " + line for line in visible(text).split("\n"))


#: Libraries that write a line (or several) per HTTP request at INFO or DEBUG: a site or a
#: pilot makes many requests a minute, and what they did is said once by our own records.
PER_REQUEST = ("httpx", "httpcore")


def configure(level: int, stream: TextIO = sys.stderr) -> None:
    """Send the root logger's records to ``stream`` through ``LogFormatter``, from ``level``.

    ``DEBUG`` is Frazil's own detail: other libraries stay at ``INFO``, and those of
    ``PER_REQUEST`` at ``WARNING`` whatever the level.
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogFormatter(FORMAT))
    logging.basicConfig(level=max(level, logging.INFO), handlers=[handler])
    logging.getLogger("frazil").setLevel(level)
    for name in PER_REQUEST:
        logging.getLogger(name).setLevel(logging.WARNING)
