"""Frazil's errors as HTTP responses: a status code and ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from frazil.errors import (
    AuthError,
    BadPasskey,
    ConfigError,
    ExpressionError,
    FrazilError,
    IllegalTransition,
    NotFound,
    Rejected,
    StoreError,
)

STATUS: list[tuple[type[Exception], int]] = [
    (BadPasskey, 403),
    (AuthError, 401),
    (NotFound, 404),
    (Rejected, 409),
    (IllegalTransition, 409),
    (ConfigError, 422),
    (ExpressionError, 422),
    (StoreError, 503),
    (FrazilError, 400),
    (ValueError, 400),
]


def _response(exc: Exception) -> JSONResponse:
    code = next(c for cls, c in STATUS if isinstance(exc, cls))
    if isinstance(exc, AuthError) and "needs a" in str(exc):
        code = 403  # authenticated, but not allowed
    body: dict[str, object] = {"error": type(exc).__name__, "detail": str(exc)}
    if isinstance(exc, ConfigError):
        body["problems"] = [asdict(p) for p in exc.problems]
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse(body, status_code=code, headers=headers)


def install(app: FastAPI) -> None:
    """Map Frazil's exceptions to responses on ``app``."""
    for cls, _ in STATUS:

        async def handle(_request: Request, exc: Exception) -> JSONResponse:
            return _response(exc)

        app.add_exception_handler(cls, handle)
