"""The wire format's version, and where it travels."""

from __future__ import annotations

#: The version of the wire format that this release speaks.
PROTOCOL = 1
#: The oldest version a server of this release still serves.
OLDEST_PROTOCOL = 1
#: The header that carries the version, on requests and answers.
PROTOCOL_HEADER = "Frazil-Protocol"
