"""What a request may carry, checked before its body is read: who sends it, how much, and JSON.

An ASGI middleware in front of the routes, for requests with a body. In order:

1. A body that declares a ``Content-Length`` over the largest limit is refused (413).
2. The caller must name itself before a byte of the body is read. A bearer token is checked
   here (through the same short cache as the routes use, so it costs no extra query): an
   unknown or revoked one is refused (401) with the body unread. A pilot's key (``Passkey``,
   ``Pilot``, ``Reservation``) is checked by its route against the attempt or the pilot, so
   its body is read first and may be at most ``max_key_bytes``, much less than a token's
   ``max_bytes``. No credentials at all: 401.
3. A body that is not declared as JSON is refused (415): every route that takes a body takes
   JSON, and a form or plain text would otherwise reach the validation as a string.
4. The body is read up to its caller's limit (413 past it, also for a body that streams
   without a length), then handed to the routes.

An anonymous request therefore costs a few bytes of headers whatever it says it sends. Every
answer has the API's error shape, ``{"error": ..., "detail": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The default limit on a request's body from a token's holder (a config is at most this large).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: The default limit on a request's body that carries a pilot's key (checked after reading).
MAX_KEY_BODY_BYTES = 4 * 1024 * 1024
#: Schemes whose key is checked by the route it calls (against an attempt or a pilot).
KEY_SCHEMES = ("passkey", "pilot", "reservation")
#: the one route that takes a body without a token (a name and a password), and its limit
LOGIN_PATH = "/login"
MAX_LOGIN_BYTES = 8 * 1024


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _refuse(
    send: Send, status: int, error: str, detail: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse bodies of unknown callers (401), over their limit (413), or not JSON (415).

    ``check_token(value)`` raises ``AuthError`` for a token that may not call at all (it runs
    in a worker thread: it may read the database); ``answer(exc, method, path)`` turns what
    it raised into the API's response (a database that cannot be reached: 503).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        *,
        max_key_bytes: int = MAX_KEY_BODY_BYTES,
        check_token: Callable[[str], object] | None = None,
        answer: Callable[[Exception, str, str], ASGIApp | None] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_key_bytes = min(max_key_bytes, max_bytes)
        self.check_token = check_token
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send, self.max_bytes, "")
            return
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if not (declared or chunked):  # no body: nothing to check
            await self.app(scope, receive, send)
            return
        limit, whose = await self._limit(headers, scope, receive, send)
        if limit is None:
            return
        if declared is not None and declared > limit:
            await self._too_large(send, limit, whose)
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
            if size > limit:
                await self._too_large(send, limit, whose)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _limit(
        self, headers: Headers, scope: Scope, receive: Receive, send: Send
    ) -> tuple[int | None, str]:
        """The body limit of this caller, or None when it was refused (and answered)."""
        if scope["path"] == LOGIN_PATH:
            return MAX_LOGIN_BYTES, " for a login"
        scheme, _, value = headers.get("authorization", "").partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme in KEY_SCHEMES and value:
            return self.max_key_bytes, " for a request with a pilot's key"
        if scheme != "bearer" or not value:
            detail = "a request with a body needs 'Authorization: Bearer ...' (or a pilot's key)"
            await _refuse(send, 401, "AuthError", detail, ((b"www-authenticate", b"Bearer"),))
            return None, ""
        if self.check_token is not None:
            try:
                await run_in_threadpool(self.check_token, value)
            except Exception as exc:
                response = self.answer(exc, scope["method"], scope["path"]) if self.answer else None
                if response is None:
                    raise
                await response(scope, receive, send)
                return None, ""
        return self.max_bytes, ""

    async def _too_large(self, send: Send, limit: int, whose: str) -> None:
        detail = f"the request body is larger than the limit of {limit} bytes{whose}"
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
