"""The FastAPI app factory: routes, the error table, metrics and request limits.

``authenticity serve`` runs :func:`create_app_from_env` under uvicorn; tests build apps with
:func:`create_app`. OpenAPI is at ``/docs`` (and ``/openapi.json``). ``/healthz`` and
``/metrics`` (Prometheus text) are public; ``/review`` is the reviewer web page
(:mod:`authenticity.api.web`): put the service behind a proxy that hides
``/metrics`` if request counts are sensitive. With ``--workers N`` each worker process keeps
its own counters (scrape them per process, or run one worker per container).

>>> # from fastapi.testclient import TestClient
>>> # client = TestClient(create_app(Settings(home=tmp), detector=False))
>>> # client.get("/healthz").json()  -> {'status': 'ok'}
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authenticity import __version__
from authenticity.api import schemas, web
from authenticity.api.deps import ApiContext, ApiLimits, get_context
from authenticity.api.errors import error_body, install_error_handlers
from authenticity.api.routes import audit_router, provenance_router
from authenticity.config import Settings
from authenticity.registry import db

__all__ = ["DETECTOR_ENV", "ApiMetrics", "create_app", "create_app_from_env", "limits_from_settings"]

DETECTOR_ENV = "AUTHENTICITY_API_DETECTOR"  # "0": serve without the detector (set by `serve --no-detector`)
_UPLOAD_PATHS = frozenset({"/v1/verify", "/v1/reports"})  # streamed with their own limit; other bodies are small


class ApiMetrics:
    """Prometheus metrics of one app (its own registry, so several apps in one process do not clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("authenticity_http_requests", "HTTP requests by route template and status",
                                ["method", "route", "status"], registry=self.registry)  # fmt: skip
        self.latency = Histogram("authenticity_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry)  # fmt: skip
        self.verdicts = Counter(
            "authenticity_verdicts", "Verdicts returned by state", ["state"], registry=self.registry
        )
        self.uploads_rejected = Counter("authenticity_uploads_rejected", "Verify uploads refused, by error code",
                                        ["code"], registry=self.registry)  # fmt: skip


class _Instrument:
    """ASGI middleware: per-route metrics, a size cap on every non-upload body, and connection close
    for a request refused before its body was read (else the server would keep receiving, and
    discarding, the rest of a possibly huge body just to keep the connection alive)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, max_json_bytes: int) -> None:
        self.app, self.metrics, self.max_json_bytes = app, metrics, max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length", b"")
        started, status, received = time.perf_counter(), 500, 0
        body_done = not (declared.strip(b"0") or b"transfer-encoding" in headers)
        limit = None if scope["path"] in _UPLOAD_PATHS else self.max_json_bytes  # uploads check their own

        async def tracked_receive() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if limit is not None and received > limit:  # a chunked body that never declared its length
                    raise HTTPException(413, f"request bodies are limited to {limit} bytes")
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 400 and not body_done:
                    message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        try:
            if limit is not None and declared.isdigit() and int(declared) > limit:
                body = error_body("request.too_large", f"request bodies are limited to {limit} bytes")
                await JSONResponse(body, status_code=413)(scope, tracked_receive, tracked_send)
            else:
                await self.app(scope, tracked_receive, tracked_send)
        finally:
            route = getattr(scope.get("route"), "path", "<unmatched>")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)


def limits_from_settings(settings: Settings) -> ApiLimits:
    """Limits from ``Settings`` (``max_upload_bytes``, ``manifest_max_age`` in seconds).

    >>> limits_from_settings(Settings()).max_upload_bytes
    52428800
    """
    return ApiLimits(max_upload_bytes=settings.max_upload_bytes,
                     manifest_max_age=timedelta(seconds=settings.manifest_max_age))  # fmt: skip


def _ops_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=schemas.HealthResponse, responses={503: {"model": schemas.ErrorResponse}})
    def healthz(ctx: ApiContext = Depends(get_context)) -> schemas.HealthResponse:
        """200 when the registry database answers, else 503 with the ``registry.*`` code."""
        with db.session_scope(ctx.engine(), read_only=True) as session:
            session.execute(text("SELECT 1"))
        return schemas.HealthResponse(status="ok")

    @router.get("/metrics", response_class=Response)
    def metrics(ctx: ApiContext = Depends(get_context)) -> Response:
        """Prometheus text exposition."""
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def create_app(settings: Settings | None = None, *, detector: bool = True, limits: ApiLimits | None = None) -> FastAPI:
    """Build the service. ``detector=False`` verifies by provenance only (fast; no torch needed).

    Nothing touches the database or loads the detector until startup (lifespan) or the first
    request that needs it, so building an app is cheap and a database that is down shows up
    as 503 on ``/healthz`` rather than as an import-time crash.
    """
    settings = settings or Settings()
    limits = limits or limits_from_settings(settings)
    metrics = ApiMetrics()
    context = ApiContext(settings, detector=detector, limits=limits, metrics=metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(context.warm_up)  # a server that cannot verify should not start
        yield

    summary = "Media provenance (signing at capture, transparency log) and deepfake detection."
    app = FastAPI(title="authenticity", version=__version__, summary=summary, lifespan=lifespan)
    app.state.context = context
    install_error_handlers(app, pages={web.PREFIX: web.error_page})
    app.add_middleware(_Instrument, metrics=metrics, max_json_bytes=limits.max_json_bytes)
    app.include_router(_ops_router())
    app.include_router(provenance_router)
    app.include_router(audit_router)
    web.install(app)
    return app


def create_app_from_env() -> FastAPI:
    """The app uvicorn builds in each worker (``factory=True``): settings from the environment."""
    return create_app(Settings(), detector=os.environ.get(DETECTOR_ENV, "1") != "0")
