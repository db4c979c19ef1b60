"""The reviewer web page: server-rendered HTML over the same use cases as ``/v1/audit`` (no JavaScript).

=====================================  ======  ==============================================================
route                                  method  what
=====================================  ======  ==============================================================
``/review/login``                      GET     the login form (paste an API key of role reviewer or admin)
``/review/login``                      POST    check the key; on success a session cookie, then the queue
``/review/logout``                     POST    end the session (CSRF token required)
``/review``                            GET     the queue: filters (status, reason, min score), sorting
``/review/items/{id}``                 GET     one item: media, detector, provenance, near matches, history
``/review/items/{id}/claim|release``   POST    the review steps (CSRF token required), back to the item
``/review/items/{id}/decide``          POST    decision + note (CSRF token required)
``/review/items/{id}/media``           GET     the stored copy (as ``/v1/audit/items/{id}/media``)
``/review/items/{id}/heatmap.png``     GET     tile scores drawn over the image
``/review/items/{id}/timeline.png``    GET     per-frame scores of a video
=====================================  ======  ==============================================================

Forms post and redirect back (303), so a reload never repeats an action. Errors come from the one
error table, rendered as a page with the stable code (:func:`~authenticity.api.web.render.error_page`).
"""

from __future__ import annotations

import math
import secrets

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from authenticity.api.deps import ApiContext, get_context
from authenticity.api.errors import status_for
from authenticity.api.routes.audit import item_detail, media_response, queue, stored_media
from authenticity.api.web import figures
from authenticity.api.web.render import PAGE_HEADERS, render
from authenticity.api.web.session import (
    COOKIE,
    LOGIN_COOKIE,
    LOGIN_TTL,
    SESSION_TTL,
    ReviewSession,
    SessionSigner,
    check_csrf,
    login,
    review_session,
    session_signer,
)
from authenticity.api.web.views import detector_enlargement, detector_scores, event_details, evidence_view, figure_kind
from authenticity.audit import workflow
from authenticity.audit.policy import REASONS, Decision, ItemStatus
from authenticity.audit.workflow import MAX_LIMIT
from authenticity.errors import AuthError, UsageError
from authenticity.registry import db

__all__ = ["router"]

router = APIRouter(prefix="/review", include_in_schema=False)
_ITEM_ID = PathParam(ge=1, le=2**31 - 1)
_SORTS = ("score", "last_seen", "oldest")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_form(request: Request, signer: SessionSigner, status: int = 200, **context: object) -> Response:
    nonce = secrets.token_urlsafe(16)
    page = render("login.html", status, csrf=signer.csrf_token("login." + nonce), reviewer=None,
                  **{"error": None, "code": None, "notice": None, **context})  # fmt: skip
    page.set_cookie(LOGIN_COOKIE, nonce, max_age=int(LOGIN_TTL.total_seconds()), path="/review/login",
                    httponly=True, samesite="strict", secure=_secure(request))  # fmt: skip
    return page


@router.get("/login")
def login_form(request: Request, out: int = 0, signer: SessionSigner = Depends(session_signer)) -> Response:
    return _login_form(request, signer, notice="You are logged out." if out else None)


@router.post("/login")
def login_submit(
    request: Request,
    key: str = Form("", max_length=256),
    csrf: str = Form("", max_length=128),
    ctx: ApiContext = Depends(get_context),
    signer: SessionSigner = Depends(session_signer),
) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    try:
        check_csrf(signer.csrf_token("login." + nonce), csrf if nonce else None)
        row_id, _ = login(ctx, key)
    except AuthError as exc:  # the form again, with what went wrong and the table's status (401/403)
        return _login_form(request, signer, status_for(exc), error=exc.message, code=exc.code)
    response = RedirectResponse("/review", status_code=303, headers=PAGE_HEADERS)
    response.set_cookie(COOKIE, signer.issue(row_id), max_age=int(SESSION_TTL.total_seconds()), path="/review",
                        httponly=True, samesite="strict", secure=_secure(request))  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path="/review/login")
    return response


@router.post("/logout")
def logout(csrf: str = Form("", max_length=128), who: ReviewSession = Depends(review_session)) -> Response:
    check_csrf(who.csrf, csrf)
    response = RedirectResponse("/review/login?out=1", status_code=303, headers=PAGE_HEADERS)
    response.delete_cookie(COOKIE, path="/review", httponly=True, samesite="strict")
    return response


def _min_score(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError("usage.min_score.invalid", f"min score {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError("usage.min_score.invalid", "min score must be a number within [0, 1]")
    return value


@router.get("")
def queue_page(
    status: str = Query("", max_length=32),
    reason: str = Query("", max_length=32),
    min_score: str = Query("", max_length=32),
    sort: str = Query("score", max_length=16),
    who: ReviewSession = Depends(review_session),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    # Filtered and sorted in the database; the page shows the first MAX_LIMIT items in that order.
    items = queue(ctx, status=status or None, reason=reason or None, min_score=_min_score(min_score), limit=MAX_LIMIT,
                  sort=sort)  # fmt: skip
    return render("queue.html", items=items, truncated=len(items) >= MAX_LIMIT, limit=MAX_LIMIT,
                  filters={"status": status, "reason": reason, "min_score": min_score, "sort": sort},
                  statuses=[s.value for s in ItemStatus], reasons=REASONS, sorts=_SORTS,
                  reviewer=who.principal.name, csrf=who.csrf)  # fmt: skip


@router.get("/items/{item_id}")
def item_page(
    item_id: int = _ITEM_ID, who: ReviewSession = Depends(review_session), ctx: ApiContext = Depends(get_context)
) -> Response:
    item = item_detail(ctx, item_id)
    mine = item.status == ItemStatus.CLAIMED and item.claimed_by == who.principal.name
    return render("item.html", item=item, evidence=evidence_view(item.verdict),
                  figure=figure_kind(item.verdict, item.media_type), mine=mine,
                  details={e.seq: event_details(e.payload) for e in item.events},
                  decisions=[d.value for d in Decision], reviewer=who.principal.name, csrf=who.csrf)  # fmt: skip


def _step(ctx: ApiContext, item_id: int, who: ReviewSession, csrf: str, action: str, **form: str) -> Response:
    check_csrf(who.csrf, csrf)
    name = who.principal.name
    with db.session_scope(ctx.engine()) as session:
        if action == "claim":
            workflow.claim(session, ctx.settings, item_id, name)
        elif action == "release":
            workflow.release(session, ctx.settings, item_id, name)
        else:
            workflow.decide(session, ctx.settings, item_id, name, form["decision"], form["note"])
    return RedirectResponse(f"/review/items/{item_id}", status_code=303, headers=PAGE_HEADERS)


@router.post("/items/{item_id}/claim")
def claim(
    item_id: int = _ITEM_ID,
    csrf: str = Form("", max_length=128),
    who: ReviewSession = Depends(review_session),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    return _step(ctx, item_id, who, csrf, "claim")


@router.post("/items/{item_id}/release")
def release(
    item_id: int = _ITEM_ID,
    csrf: str = Form("", max_length=128),
    who: ReviewSession = Depends(review_session),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    return _step(ctx, item_id, who, csrf, "release")


@router.post("/items/{item_id}/decide")
def decide(
    item_id: int = _ITEM_ID,
    csrf: str = Form("", max_length=128),
    decision: str = Form("", max_length=32),
    note: str = Form("", max_length=8000),
    who: ReviewSession = Depends(review_session),
    ctx: ApiContext = Depends(get_context),
) -> Response:
    return _step(ctx, item_id, who, csrf, "decide", decision=decision, note=note)


@router.get("/items/{item_id}/media")
def media(
    item_id: int = _ITEM_ID, _who: ReviewSession = Depends(review_session), ctx: ApiContext = Depends(get_context)
) -> FileResponse:
    return media_response(ctx, item_id)


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={**PAGE_HEADERS, "Cache-Control": "private, no-store"})


@router.get("/items/{item_id}/heatmap.png")
async def heatmap(
    item_id: int = _ITEM_ID, _who: ReviewSession = Depends(review_session), ctx: ApiContext = Depends(get_context)
) -> Response:
    item = await run_in_threadpool(item_detail, ctx, item_id)
    tiles, _, _ = detector_scores(item.verdict)
    enlargement = detector_enlargement(item.verdict)
    path, media_type = await run_in_threadpool(stored_media, ctx, item_id)
    if not media_type.startswith("image/"):
        raise UsageError("review.figure.none", "a heatmap is drawn over images only; videos have a timeline")
    title = f"item {item_id}: P(synthetic) per tile"
    return _png(await run_in_threadpool(lambda: figures.tile_heatmap_png(
        path, tiles, max_pixels=ctx.settings.max_pixels, title=title, enlargement=enlargement)))  # fmt: skip


@router.get("/items/{item_id}/timeline.png")
async def timeline(
    item_id: int = _ITEM_ID, _who: ReviewSession = Depends(review_session), ctx: ApiContext = Depends(get_context)
) -> Response:
    item = await run_in_threadpool(item_detail, ctx, item_id)
    _, frames, score = detector_scores(item.verdict)
    title = f"item {item_id}: P(synthetic) per frame"
    return _png(await run_in_threadpool(lambda: figures.frame_timeline_png(frames, score=score, title=title)))
