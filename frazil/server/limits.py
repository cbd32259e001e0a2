"""What a request may carry: a body of at most ``max_bytes``, and only JSON.

An ASGI middleware in front of the routes. A body that declares a larger ``Content-Length``
is refused before a byte of it is read (413); one that streams without a length is read only
up to the limit. A body that is not declared as JSON is refused (415): every route that takes
a body takes JSON, and a form or plain text would otherwise reach the validation as a string.
Both answers have the API's error shape, ``{"error": ..., "detail": ...}``.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The default limit on a request's body (a config is at most this large, too).
MAX_BODY_BYTES = 16 * 1024 * 1024


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _refuse(send: Send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (413) and bodies that are not JSON (415)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send)
            return
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if not (declared or chunked):  # no body: nothing to check
            await self.app(scope, receive, send)
            return
        content_type = headers.get("content-type", "")
        if not _is_json(content_type):
            what = f"not {content_type!r}" if content_type else "and this one declares no type"
            detail = f"a request body must be JSON (Content-Type: application/json), {what}"
            await _refuse(send, 415, "UnsupportedMediaType", detail)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, send: Send) -> None:
        detail = f"the request body is larger than the limit of {self.max_bytes} bytes"
        await _refuse(send, 413, "TooLarge", detail)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then whatever the client sends."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
