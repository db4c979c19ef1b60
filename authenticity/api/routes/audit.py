"""Audit routes: the review queue over ``authenticity.audit`` (flagged items, claims, decisions, exports).

=========================================  =================  ===============================================
route                                      who                success
=========================================  =================  ===============================================
``GET /v1/audit/items``                    reviewer, admin    200 items, filtered, oldest first
``GET /v1/audit/items/{id}``               reviewer, admin    200 item + latest verdict + audit events
``POST /v1/audit/items/{id}/claim``        reviewer, admin    200 the item, claimed by the caller
``POST /v1/audit/items/{id}/release``      reviewer, admin    200 the item, open again
``POST /v1/audit/items/{id}/decide``       reviewer, admin    200 the item, decided (final)
``GET /v1/audit/items/{id}/media``         reviewer, admin    200 the stored copy (download)
``GET /v1/audit/export?format=csv|json``   reviewer, admin    200 every item and decision
``GET /v1/audit/check``                    reviewer, admin    200 the chain report (``ok`` false = tampering)
``POST /v1/reports``                       any key            200 the flagged item (new or updated)
=========================================  =================  ===============================================

The reviewer's identity in the signed audit chain is the API key's name. Refusals are the
workflow's codes: ``audit.item.not_found`` (404), ``audit.item.claimed`` / ``.decided`` /
``.not_claimed`` (409), ``usage.*`` (422).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from authenticity.api import schemas
from authenticity.api.deps import ApiContext, get_context, require_roles, spool_upload_with_fields
from authenticity.audit import workflow
from authenticity.audit._media import media_file
from authenticity.audit.chain import check_chain
from authenticity.audit.checkpoint import read_checkpoint
from authenticity.audit.exports import export, item_to_dict
from authenticity.errors import AuthenticityError
from authenticity.media import MediaType
from authenticity.provenance.keystore import trusted_log_key_ids
from authenticity.provenance.manifest import format_timestamp
from authenticity.registry import db
from authenticity.registry.apikeys import Principal, Role
from authenticity.registry.models import FlaggedItem

__all__ = ["AuditEvent", "AuditItem", "AuditItemDetail", "ChainReport", "item_detail", "media_response", "queue",
           "router", "stored_media"]  # fmt: skip

router = APIRouter(prefix="/v1", tags=["audit"])
_REVIEW = require_roles(Role.REVIEWER, Role.ADMIN)
_ANY = require_roles(Role.ADMIN, Role.SIGNER, Role.REVIEWER)
_MAX_ID = 2**31 - 1  # flagged_item.id is a 32-bit integer column
_ERRORS: dict[int | str, dict[str, object]] = {
    s: {"model": schemas.ErrorResponse} for s in (400, 401, 403, 404, 409, 413, 415, 422, 503)
}
_ITEM_ID = PathParam(ge=1, le=_MAX_ID)
_MEDIA_TYPES = frozenset(m.value for m in MediaType)


class AuditItem(BaseModel):
    """A flagged item. ``score``: the detector's P(synthetic) of the latest verdict (null when not run)."""

    id: int
    content_digest: str
    media_type: str
    has_media: bool
    reasons: list[str]
    state: str | None
    score: float | None
    occurrences: int
    status: str
    claimed_by: str | None
    decision: str | None
    note: str | None
    first_seen_at: str
    last_seen_at: str
    decided_at: str | None


class AuditEvent(BaseModel):
    """One signed event of the audit chain."""

    seq: int
    at: str
    actor: str
    action: str
    payload: dict[str, Any]


class AuditItemDetail(AuditItem):
    """An item with its latest verdict (``Verdict.to_dict()``; null for a report without one) and history."""

    verdict: dict[str, Any] | None
    events: list[AuditEvent]


class DecideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: str  # checked by the workflow: usage.decision.invalid
    note: str  # usage.note.required / usage.note.too_long


class ReportRequest(BaseModel):
    """Report content already in the queue by its digest (attach the file, as multipart, for new content)."""

    model_config = ConfigDict(extra="forbid")
    content_digest: str
    reason: str


class ChainProblemModel(BaseModel):
    seq: int
    code: str
    message: str


class ChainReport(BaseModel):
    ok: bool
    events_checked: int
    items_checked: int
    problems: list[ChainProblemModel]


def _item(item: FlaggedItem) -> AuditItem:
    data = item_to_dict(item)
    return AuditItem.model_validate({**data, "has_media": data.pop("media_path") is not None})


def item_detail(ctx: ApiContext, item_id: int) -> AuditItemDetail:
    """One item with its latest verdict and its events (``audit.item.not_found``)."""
    with db.session_scope(ctx.engine(), read_only=True) as session:
        item = workflow.get_item(session, item_id)
        data = item_to_dict(item, with_verdict=True)
        events = [AuditEvent(seq=e.seq, at=format_timestamp(e.created_at), actor=e.actor, action=e.action,
                             payload=json.loads(e.payload))
                  for e in workflow.item_history(session, item_id)]  # fmt: skip
    verdict = data.pop("verdict")
    return AuditItemDetail.model_validate({**data, "has_media": data.pop("media_path") is not None,
                                           "verdict": verdict if isinstance(verdict, dict) else None,
                                           "events": events})  # fmt: skip


def queue(ctx: ApiContext, *, status: str | None = None, reason: str | None = None, decision: str | None = None,
          min_score: float | None = None, limit: int = 50, offset: int = 0,
          sort: str = "oldest") -> list[AuditItem]:  # fmt: skip
    """The review queue, filtered and sorted (the workflow's ``usage.*`` codes for bad filters)."""
    with db.session_scope(ctx.engine(), read_only=True) as session:
        items = workflow.list_items(session, status=status, reason=reason, decision=decision, min_score=min_score,
                                    limit=limit, offset=offset, sort=sort)  # fmt: skip
        return [_item(i) for i in items]


def stored_media(ctx: ApiContext, item_id: int) -> tuple[Path, str]:
    """The item's stored copy, re-hashed against its digest, and its sniffed Content-Type.

    Codes: ``audit.item.not_found``, ``audit.media.missing``, ``audit.media.path_invalid``, ``audit.media.corrupt``.
    """
    with db.session_scope(ctx.engine(), read_only=True) as session:
        item = workflow.get_item(session, item_id)
        path = media_file(ctx.settings, item.media_path, item.content_digest)
        return path, item.media_type if item.media_type in _MEDIA_TYPES else "application/octet-stream"


def media_response(ctx: ApiContext, item_id: int) -> FileResponse:
    """The item's stored copy as a download that no browser will sniff or run.

    Threat model: flagged content is hostile. The file name is ours (``item-<id><suffix>``), the
    Content-Type is the sniffed type stored with the item, ``nosniff`` stops a browser from guessing
    another, and the sandbox CSP keeps it inert even when opened directly.
    """
    path, media_type = stored_media(ctx, item_id)
    return FileResponse(path, media_type=media_type, filename=f"item-{item_id}{path.suffix}",
                        content_disposition_type="attachment",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})  # fmt: skip


@router.get("/audit/items", response_model=list[AuditItem], responses=_ERRORS)
def list_items(
    status: str | None = Query(None, max_length=32, description="open, claimed or decided"),
    reason: str | None = Query(None, max_length=32, description="a flag reason, e.g. tampered or report"),
    decision: str | None = Query(None, max_length=32),
    min_score: float | None = Query(None, description="only items the detector scored at least this (0..1)"),
    limit: int = Query(50, description=f"1..{workflow.MAX_LIMIT}"),
    offset: int = Query(0, le=2**62),
    sort: str = Query("oldest", max_length=16, description="oldest, score (highest first) or last_seen"),
    _: Principal = Depends(_REVIEW),
    ctx: ApiContext = Depends(get_context),
) -> list[AuditItem]:
    """The review queue (``usage.status.invalid``, ``usage.limit.invalid``, ``usage.sort.invalid``, ...)."""
    return queue(ctx, status=status, reason=reason, decision=decision, min_score=min_score, limit=limit,
                 offset=offset, sort=sort)  # fmt: skip


@router.get("/audit/items/{item_id}", response_model=AuditItemDetail, responses=_ERRORS)
def get_item(
    item_id: int = _ITEM_ID, _: Principal = Depends(_REVIEW), ctx: ApiContext = Depends(get_context)
) -> AuditItemDetail:
    """One item, its latest verdict and its audit events."""
    return item_detail(ctx, item_id)


@router.post("/audit/items/{item_id}/claim", response_model=AuditItem, responses=_ERRORS)
def claim(
    item_id: int = _ITEM_ID, who: Principal = Depends(_REVIEW), ctx: ApiContext = Depends(get_context)
) -> AuditItem:
    """Take an open item for review (claiming one you already hold is a no-op)."""
    with db.session_scope(ctx.engine()) as session:
        return _item(workflow.claim(session, ctx.settings, item_id, who.name))


@router.post("/audit/items/{item_id}/release", response_model=AuditItem, responses=_ERRORS)
def release(
    item_id: int = _ITEM_ID, who: Principal = Depends(_REVIEW), ctx: ApiContext = Depends(get_context)
) -> AuditItem:
    """Give an item you hold back to the queue."""
    with db.session_scope(ctx.engine()) as session:
        return _item(workflow.release(session, ctx.settings, item_id, who.name))


@router.post("/audit/items/{item_id}/decide", response_model=AuditItem, responses=_ERRORS)
def decide(
    body: DecideRequest,
    item_id: int = _ITEM_ID,
    who: Principal = Depends(_REVIEW),
    ctx: ApiContext = Depends(get_context),
) -> AuditItem:
    """Decide an item you hold: ``confirmed-synthetic``, ``confirmed-authentic``, ``manipulated`` or
    ``inconclusive``, with a note (kept in the signed chain; final)."""
    with db.session_scope(ctx.engine()) as session:
        return _item(workflow.decide(session, ctx.settings, item_id, who.name, body.decision, body.note))


@router.get("/audit/items/{item_id}/media", response_class=FileResponse, responses=_ERRORS)
def item_media(
    item_id: int = _ITEM_ID, _: Principal = Depends(_REVIEW), ctx: ApiContext = Depends(get_context)
) -> FileResponse:
    """The stored copy of the flagged media (``audit.media.missing`` when none was kept)."""
    return media_response(ctx, item_id)


@router.get("/audit/export", response_class=Response, responses=_ERRORS)
def export_queue(
    fmt: str = Query("csv", alias="format", max_length=8, description="csv or json"),
    _: Principal = Depends(_REVIEW),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    """Every item and its decision (JSON also names the chain head it reflects)."""
    folder = ctx.upload_dir()
    try:
        out = folder / "export"  # never named after the query: the format is checked by export() below
        with db.session_scope(ctx.engine(), read_only=True) as session:
            export(session, ctx.settings, fmt, out)
        data = out.read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    media_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="audit-export.{fmt}"'})  # fmt: skip


@router.get("/audit/check", response_model=ChainReport, responses=_ERRORS)
def check(_: Principal = Depends(_REVIEW), ctx: ApiContext = Depends(get_context)) -> ChainReport:
    """Recompute every link, hash and signature of the audit chain and replay every item against its row."""
    with db.session_scope(ctx.engine(), read_only=True) as session:
        report = check_chain(session, trusted_log_key_ids(ctx.settings), read_checkpoint(ctx.settings))
    return ChainReport(ok=report.ok, events_checked=report.events_checked, items_checked=report.items_checked,
                       problems=[ChainProblemModel(seq=p.seq, code=p.code, message=p.message)
                                 for p in report.problems])  # fmt: skip


def _report(ctx: ApiContext, media: Path | None, digest: str | None, reason: str, actor: str) -> AuditItem:
    with db.session_scope(ctx.engine()) as session:
        return _item(workflow.report(session, ctx.settings, media=media, content_digest=digest, reason=reason,
                                     actor=actor))  # fmt: skip


async def _small_body(request: Request, limit: int) -> bytes:
    """The whole body, refused past *limit* (this path is exempt from the app-wide cap: it takes uploads)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"request bodies are limited to {limit} bytes")
    return body


_REPORT_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": ReportRequest.model_json_schema()},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file", "reason"], "properties": {
                "file": {"type": "string", "format": "binary"}, "reason": {"type": "string"}}}},
        }
    }
}  # fmt: skip


@router.post("/reports", response_model=AuditItem, responses=_ERRORS, openapi_extra=_REPORT_BODY)
async def report(request: Request, who: Principal = Depends(_ANY), ctx: ApiContext = Depends(get_context)) -> AuditItem:
    """Report content for review: JSON ``{content_digest, reason}`` for content already queued, or
    multipart with the ``file`` and a ``reason`` field. The file name is ignored."""
    mime, _ = parse_options_header(request.headers.get("content-type", ""))
    if mime == b"application/json":
        try:
            body = ReportRequest.model_validate_json(await _small_body(request, ctx.limits.max_json_bytes))
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        return await run_in_threadpool(_report, ctx, None, body.content_digest, body.reason, who.name)
    folder = ctx.upload_dir()
    try:
        try:
            media, fields = await spool_upload_with_fields(request, ctx, folder, frozenset({"reason"}))
            return await run_in_threadpool(_report, ctx, media, None, fields.get("reason", ""), who.name)
        except AuthenticityError as exc:  # messages name the file; ours is a server path
            raise type(exc)(exc.code, exc.message.replace(str(folder / "upload"), "upload"), hint=exc.hint) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
