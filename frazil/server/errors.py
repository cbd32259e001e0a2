"""Frazil's errors as HTTP responses: a status code and ``{"error": ..., "detail": ...}``.

A request that does not fit the API's description keeps FastAPI's answer, 422 with
``{"detail": [...]}`` (each problem's location, message and input). A database that cannot
be reached (stopped, restarting, the connection cut, or silent past its timeouts) answers 503
as a ``StoreError``, which clients retry, not a 500 that they would take as final. Any other
error, a statement the database refused (``StatementFailed``) among them, answers 500 in the
same shape, ``{"error": "InternalError", ...}``, naming only the kind of error: its text and
traceback go to the server's log (the server logs every unhandled error).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from frazil.errors import (
    AuthError,
    BadPasskey,
    ConfigError,
    DatabaseUnavailable,
    ExpressionError,
    Forbidden,
    FrazilError,
    IllegalTransition,
    NotFound,
    Rejected,
    SpecError,
    StatementFailed,
    StoreError,
    TooLarge,
    TooManyAttempts,
)

log = logging.getLogger(__name__)

STATUS: list[tuple[type[Exception], int]] = [
    (BadPasskey, 403),
    (TooLarge, 413),
    (TooManyAttempts, 429),
    (Forbidden, 403),  # authenticated, but not allowed
    (AuthError, 401),
    (NotFound, 404),
    (Rejected, 409),
    (IllegalTransition, 409),
    (ConfigError, 422),
    (ExpressionError, 422),
    (SpecError, 422),
    (StoreError, 503),
    (FrazilError, 400),
    (ValueError, 400),
]


def _response(exc: Exception) -> JSONResponse:
    code = next(c for cls, c in STATUS if isinstance(exc, cls))
    body: dict[str, object] = {"error": type(exc).__name__, "detail": str(exc)}
    if isinstance(exc, ConfigError):
        body["problems"] = [asdict(p) for p in exc.problems]
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse(body, status_code=code, headers=headers)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as text: JSON cannot carry them, so a request that
    held them (Python's JSON reader takes ``NaN``) must not break the answer to it."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)


def _unavailable_response(method: str, path: str, exc: DatabaseUnavailable) -> JSONResponse:
    log.warning("the database is unavailable (%s %s answers 503): %s", method, path, exc.reason)
    return _response(StoreError(str(exc)))  # the name that clients know


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DatabaseUnavailable)
    return _unavailable_response(request.method, request.url.path, exc)


def answer(exc: Exception, method: str = "", path: str = "") -> JSONResponse | None:
    """The response to ``exc`` raised outside a route (a middleware's check), if it has one."""
    if isinstance(exc, DatabaseUnavailable):
        return _unavailable_response(method, path, exc)
    if isinstance(exc, StatementFailed):
        return None  # unexpected: raised on, and logged
    if any(isinstance(exc, cls) for cls, _ in STATUS):
        return _response(exc)
    return None


def _internal(method: str, path: str, exc: Exception) -> JSONResponse:
    detail = f"{method} {path} failed ({type(exc).__name__}); see the log"
    return JSONResponse({"error": "InternalError", "detail": detail}, status_code=500)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette raises the exception again once this answer is sent: the server logs it
    return _internal(request.method, request.url.path, exc)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    # answered here, not raised on (it is a FrazilError): log it as an unhandled error is
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _internal(request.method, request.url.path, exc)


def install(app: FastAPI) -> None:
    """Map Frazil's exceptions to responses on ``app``."""
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(DatabaseUnavailable, _unavailable)
    app.add_exception_handler(StatementFailed, _refused)
    for cls, _ in STATUS:

        async def handle(_request: Request, exc: Exception) -> JSONResponse:
            return _response(exc)

        app.add_exception_handler(cls, handle)
