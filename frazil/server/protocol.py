"""The wire format's version, checked in front of everything else.

Every answer names the version this server speaks (``Frazil-Protocol``). A request that names
a version outside what the server serves (``OLDEST_PROTOCOL`` to ``PROTOCOL``) is refused at
once with 426 and a message naming both versions and what to upgrade, before its caller is
authenticated or its body read: a pilot of another release stops at its first call, not
halfway through a task. A request that names no version (a person with curl, a script) is
served as the current version.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frazil.wire import OLDEST_PROTOCOL, PROTOCOL, PROTOCOL_HEADER

_HEADER = PROTOCOL_HEADER.lower().encode()
_VERSION = (_HEADER, str(PROTOCOL).encode())


def refusal(theirs: str) -> str | None:
    """Why a caller speaking version ``theirs`` cannot be served (None: it can)."""
    try:
        version = int(theirs)
    except ValueError:
        return f"{PROTOCOL_HEADER} must be a whole number, not {theirs[:20]!r}"
    if version > PROTOCOL:
        return (
            f"the caller speaks Frazil protocol {version}, this server speaks {PROTOCOL}: "
            "upgrade the server, or run a site or pilot of the server's release"
        )
    if version < OLDEST_PROTOCOL:
        served = (
            str(PROTOCOL) if OLDEST_PROTOCOL == PROTOCOL else f"{OLDEST_PROTOCOL} to {PROTOCOL}"
        )
        return (
            f"the caller speaks Frazil protocol {version}, this server speaks {served}: "
            "upgrade the site, pilot or client to the server's release"
        )
    return None


class ProtocolCheck:
    """Refuse callers of a wire format this server does not serve; name ours on answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        theirs = next((v for k, v in scope["headers"] if k == _HEADER), None)
        why = refusal(theirs.decode("latin-1")) if theirs is not None else None
        if why is not None:
            body = json.dumps({"error": "ProtocolMismatch", "detail": why}).encode()
            await send({
                "type": "http.response.start", "status": 426,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), _VERSION],
            })  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), _VERSION]}
            await send(message)

        await self.app(scope, receive, named)
