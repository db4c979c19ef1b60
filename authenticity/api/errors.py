"""The one table mapping error codes to HTTP status, and the exception handlers that use it.

Every error leaves the service as ``{"error": {"code": "<dotted code>", "message": "..."}}``;
a stack trace never does. Paths with an error page (the reviewer web page under ``/review``)
get the same status and code rendered as HTML instead. An exact code in ``STATUS_BY_CODE`` wins, else the first class in
``STATUS_BY_CLASS`` that matches. For 5xx the message is a fixed sentence (details such as
database hosts are logged server-side only).

=====  =====================================================================================
400    ``upload.malformed`` (multipart body cannot be parsed), ``request.body.invalid``
401    ``auth.missing``, ``auth.invalid``, ``auth.revoked``, ``auth.session.*`` (review page)
403    ``auth.forbidden`` (wrong role), ``registry.signer.revoked``, ``registry.manifest.key_mismatch``,
       ``review.csrf.invalid``
404    ``*.not_found`` (record, signer, API key, tree head, flagged item), ``request.route.not_found``,
       ``audit.media.missing``, ``review.figure.none``
405    ``request.method.not_allowed``
409    ``registry.record.duplicate``, ``registry.signer.exists``, ``registry.signer.key_exists``,
       ``registry.signer.already_revoked``, ``registry.apikey.exists``, ``registry.apikey.already_revoked``,
       ``audit.item.claimed``, ``audit.item.decided``, ``audit.item.not_claimed``, ``audit.item.exists``
413    ``upload.too_large``, ``request.too_large``
415    ``media.type.unsupported``
422    ``request.invalid`` (FastAPI validation), ``upload.missing``, ``media.*``, ``manifest.*``,
       ``provenance.*``, ``registry.manifest.stale``, ``registry.manifest.future``, ``log.proof.out_of_range``,
       ``usage.*``
500    ``internal.error`` (anything unexpected), registry corruption (``log.node.missing``, ...),
       a stored review copy that is not the item's (``audit.media.path_invalid``, ``audit.media.corrupt``)
503    ``registry.*`` unavailable (locked, unreachable, not migrated), ``detector.unavailable``,
       ``review.figure.unavailable`` (matplotlib missing)
=====  =====================================================================================

>>> status_for(AuthenticityError("registry.record.duplicate"))
409
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from authenticity.errors import (
    AuthenticityError,
    AuthError,
    ConfigError,
    KeyStoreError,
    ManifestError,
    MediaError,
    RegistryError,
    RegistryUnavailableError,
    UsageError,
    VerificationError,
)

__all__ = ["STATUS_BY_CLASS", "STATUS_BY_CODE", "ErrorPage", "error_body", "install_error_handlers", "status_for"]

ErrorPage = Callable[[Request, int, str, str], Response]
"""Renders an error for a human: ``(request, status, code, message) -> response``."""

log = logging.getLogger("authenticity.api")

STATUS_BY_CODE: dict[str, int] = {
    "upload.malformed": 400,
    "request.body.invalid": 400,
    "auth.missing": 401,
    "auth.invalid": 401,
    "auth.revoked": 401,
    "auth.forbidden": 403,
    "review.csrf.invalid": 403,
    "registry.signer.revoked": 403,
    "registry.manifest.key_mismatch": 403,
    "registry.record.not_found": 404,
    "registry.signer.not_found": 404,
    "registry.apikey.not_found": 404,
    "log.tree_head.not_found": 404,
    "request.route.not_found": 404,
    "audit.item.not_found": 404,
    "audit.media.missing": 404,
    "review.figure.none": 404,
    "request.method.not_allowed": 405,
    "registry.record.duplicate": 409,
    "registry.signer.exists": 409,
    "registry.signer.key_exists": 409,
    "registry.signer.already_revoked": 409,
    "registry.apikey.exists": 409,
    "registry.apikey.already_revoked": 409,
    "audit.item.exists": 409,
    "audit.item.claimed": 409,
    "audit.item.decided": 409,
    "audit.item.not_claimed": 409,
    "upload.too_large": 413,
    "request.too_large": 413,
    "media.type.unsupported": 415,
    "request.invalid": 422,
    "upload.missing": 422,
    "registry.manifest.stale": 422,
    "registry.manifest.future": 422,
    "log.proof.out_of_range": 422,
    "detector.unavailable": 503,
    "review.figure.unavailable": 503,
    "internal.error": 500,
    "audit.media.path_invalid": 500,  # the row was edited to point elsewhere
    "audit.media.corrupt": 500,  # the stored copy changed on disk
}

STATUS_BY_CLASS: list[tuple[type[AuthenticityError], int]] = [
    (AuthError, 401),
    (RegistryUnavailableError, 503),
    (RegistryError, 500),  # any other registry failure is ours (corrupt log, database error)
    (MediaError, 422),
    (ManifestError, 422),
    (VerificationError, 422),
    (UsageError, 422),
    (KeyStoreError, 500),  # the server's own log key
    (ConfigError, 500),
    (AuthenticityError, 500),
]

_SERVER_MESSAGES = {
    503: "the service is temporarily unavailable; try again later",
    500: "internal error; the details are in the server log",
}


def status_for(exc: AuthenticityError) -> int:
    """HTTP status for an error: its exact code, else the first matching class."""
    if exc.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[exc.code]
    return next(status for cls, status in STATUS_BY_CLASS if isinstance(exc, cls))


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON body of every error response.

    >>> error_body("auth.missing", "no API key")
    {'error': {'code': 'auth.missing', 'message': 'no API key'}}
    """
    return {"error": {"code": code, "message": message}}


def _response(request: Request, status: int, code: str, message: str) -> Response:
    pages: Mapping[str, ErrorPage] = getattr(request.app.state, "error_pages", {})
    path = request.url.path
    for prefix, render in pages.items():
        if path == prefix or path.startswith(prefix + "/"):
            return render(request, status, code, message)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


async def _authenticity_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthenticityError)
    status = status_for(exc)
    message = exc.message
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.diagnostics())
        message = _SERVER_MESSAGES.get(status, _SERVER_MESSAGES[500])
    return _response(request, status, exc.code, message)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
    return _response(request, 422, "request.invalid", message)  # the offending input is not echoed back


_HTTP_CODES = {404: "request.route.not_found", 405: "request.method.not_allowed", 413: "request.too_large",
               400: "request.body.invalid"}  # fmt: skip


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"request.http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else code
    response = _response(request, exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
    return _response(request, 500, "internal.error", _SERVER_MESSAGES[500])


def install_error_handlers(app: FastAPI, pages: Mapping[str, ErrorPage] | None = None) -> None:
    """Register the handlers on *app* (called by the app factory).

    *pages* maps a path prefix (``"/review"``) to the :data:`ErrorPage` that renders errors below
    it; the status and code come from the same table either way.
    """
    app.state.error_pages = dict(pages or {})
    app.add_exception_handler(AuthenticityError, _authenticity_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
