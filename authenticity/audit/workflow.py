"""Review use cases: flag, report, list, claim, release, decide — each change is one audit event.

Every function takes a session and the settings and never commits: the caller owns the
transaction (the CLI's ``session_scope``, later the API's request). Mutating functions take the
chain lock *before* reading the item, so two processes flagging the same content, or two reviewers
claiming the same item, are serialised instead of racing. Refusals are decided by the pure state
machine :func:`~authenticity.audit.policy.apply_event` before anything is written, and the log key
file is only touched once a change is certain.

>>> # with db.session_scope(engine) as session:
>>> #     item = flag_verdict(session, settings, verdict, media=Path("upload.jpg"), actor="api")
>>> #     claim(session, settings, item.id, "ana")
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from authenticity.audit._media import StoredMedia, store_media
from authenticity.audit.chain import append_event, lock_chain
from authenticity.audit.checkpoint import pin_after_commit
from authenticity.audit.policy import (
    REASONS,
    Action,
    Decision,
    ItemState,
    ItemStatus,
    apply_event,
    flag_reasons,
    parse_decision,
)
from authenticity.config import Settings
from authenticity.errors import RegistryError, UsageError
from authenticity.media import parse_digest
from authenticity.provenance.keystore import ensure_log_key
from authenticity.registry.models import AuditEvent, FlaggedItem

if TYPE_CHECKING:
    from authenticity.verify import Verdict

__all__ = [
    "MAX_LIMIT",
    "MAX_NOTE",
    "UNKNOWN_MEDIA_TYPE",
    "claim",
    "decide",
    "flag_verdict",
    "get_item",
    "item_history",
    "list_items",
    "release",
    "report",
]

UNKNOWN_MEDIA_TYPE = "application/octet-stream"  # flagged from a verdict alone, without the bytes
MAX_NOTE = 4000
MAX_LIMIT = 1000
_MAX_ACTOR = 64  # the width of ``actor`` / ``claimed_by``


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise UsageError("usage.time.naive", "timestamps must be timezone-aware")
    return now.astimezone(UTC)


def _actor(name: str) -> str:
    """Names go into the signed chain and onto reviewers' screens: short, printable, no padding."""
    if not name or len(name) > _MAX_ACTOR or not name.isprintable() or name.strip() != name:
        raise UsageError("usage.actor.invalid", f"actor/reviewer name must be 1-{_MAX_ACTOR} printable characters "
                         "without leading or trailing spaces")  # fmt: skip
    return name


def _text(value: str, code: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise UsageError(code, f"{what} must not be empty")
    if len(value) > MAX_NOTE:
        raise UsageError(f"{code.rsplit('.', 1)[0]}.too_long", f"{what} is longer than {MAX_NOTE} characters")
    return value


def _state_of(item: FlaggedItem) -> ItemState:
    try:
        return ItemState(item.content_digest, tuple(json.loads(item.reasons)), item.occurrences,
                         ItemStatus(item.status), item.claimed_by,
                         Decision(item.decision) if item.decision else None, item.note)  # fmt: skip
    except ValueError as exc:
        raise RegistryError("audit.item.mismatch", f"item {item.id} holds invalid values; run `authenticity audit "
                            "check`") from exc  # fmt: skip


def _write(item: FlaggedItem, state: ItemState) -> None:
    item.reasons = json.dumps(list(state.reasons))
    item.occurrences = state.occurrences
    item.status = state.status.value
    item.claimed_by = state.claimed_by
    item.decision = state.decision.value if state.decision else None
    item.note = state.note


def _step(session: Session, settings: Settings, item: FlaggedItem, state: ItemState | None, actor: str,
          action: Action, payload: Mapping[str, Any], now: datetime) -> FlaggedItem:  # fmt: skip
    """Apply an event to *item* (refusing invalid steps first), then append it to the chain."""
    new_state = apply_event(state, action, actor, payload)
    key = ensure_log_key(settings)
    _write(item, new_state)
    if item.id is None:
        session.add(item)
    session.flush()
    appended = append_event(session, key=key, actor=actor, action=action.value, item_id=item.id, payload=payload,
                            now=now)  # fmt: skip
    pin_after_commit(session, settings, seq=appended.seq, event_hash=appended.event_hash)
    return item


def _find_locked(session: Session, content_digest: str) -> FlaggedItem | None:
    lock_chain(session)
    # populate_existing: a row this session loaded before the lock may be stale.
    query = select(FlaggedItem).where(FlaggedItem.content_digest == content_digest)
    return session.scalars(query.execution_options(populate_existing=True)).first()


def _new_item(digest: str, stored: StoredMedia | None, now: datetime) -> FlaggedItem:
    media_type = stored.media_type.value if stored else UNKNOWN_MEDIA_TYPE
    return FlaggedItem(content_digest=digest, media_type=media_type, media_path=stored.media_path if stored else None,
                       first_seen_at=now, last_seen_at=now)  # fmt: skip


def _attach(item: FlaggedItem, stored: StoredMedia | None, now: datetime) -> None:
    item.last_seen_at = now
    if stored is not None and item.media_path is None:
        item.media_type, item.media_path = stored.media_type.value, stored.media_path


def flag_verdict(
    session: Session, settings: Settings, verdict: Verdict, *, media: Path | None, actor: str,
    now: datetime | None = None,
) -> FlaggedItem | None:  # fmt: skip
    """Queue *verdict*'s content for review when the policy says so (None when it does not).

    Content already in the queue gets ``occurrences + 1``, merged reasons, the latest verdict and
    score (event ``occurrence``); new content starts ``open`` (event ``flagged``). *media*, the
    verified file, is copied for reviewers (``audit.media.mismatch`` if its bytes are not the verdict's).

    >>> # flag_verdict(session, settings, Verifier(settings).verify(p), media=p, actor="api").id
    """
    reasons = flag_reasons(verdict)
    if not reasons:
        return None
    actor, now = _actor(actor), _utc(now)
    score = verdict.detection.score if verdict.detection is not None else None
    if score is not None and not math.isfinite(score):
        score = None  # not JSON, and no detector reports it on purpose
    stored = store_media(settings, media, verdict.content_digest) if media is not None else None
    item = _find_locked(session, verdict.content_digest)
    payload: dict[str, Any] = {"reasons": list(reasons), "state": verdict.state.value, "score": score}
    if item is None:
        item, state, action = _new_item(verdict.content_digest, stored, now), None, Action.FLAGGED
        payload |= {"content_digest": verdict.content_digest, "media_type": item.media_type}
    else:
        state, action = _state_of(item), Action.OCCURRENCE
        _attach(item, stored, now)
    item.verdict = json.dumps(verdict.to_dict(), sort_keys=True)
    if score is not None or item.score is None:
        item.score = score
    return _step(session, settings, item, state, actor, action, payload, now)


def report(
    session: Session, settings: Settings, *, media: Path | None = None, content_digest: str | None = None,
    reason: str, actor: str, now: datetime | None = None,
) -> FlaggedItem:  # fmt: skip
    """A person reports content, by file or by the digest of content already in the queue (event ``reported``).

    Codes: ``usage.reason.required`` / ``usage.reason.too_long``, ``usage.report.target_required``,
    ``usage.digest.invalid``, ``audit.media.mismatch`` (file and digest disagree), ``audit.item.not_found``
    (an unknown digest without the file: there is nothing a reviewer could look at).

    >>> # report(session, settings, media=Path("clip.mp4"), reason="face swapped", actor="user:42")
    """
    note = _text(reason, "usage.reason.required", "the report's reason")
    actor, now = _actor(actor), _utc(now)
    if media is None and content_digest is None:
        raise UsageError("usage.report.target_required", "report a file or the content digest of a flagged item")
    digest = "sha256:" + parse_digest(content_digest).hex() if content_digest is not None else None
    stored = store_media(settings, media, digest) if media is not None else None
    digest = stored.content_digest if stored is not None else digest
    assert digest is not None
    item = _find_locked(session, digest)
    if item is None:
        if stored is None:
            raise RegistryError("audit.item.not_found", f"{digest} is not in the review queue",
                                hint="attach the file to report new content")  # fmt: skip
        item, state = _new_item(digest, stored, now), None
        item.score = None
    else:
        state = _state_of(item)
        _attach(item, stored, now)
    payload = {"content_digest": digest, "media_type": item.media_type, "note": note}
    return _step(session, settings, item, state, actor, Action.REPORTED, payload, now)


def _enum_filter(enum_type: type[ItemStatus] | type[Decision], value: str, code: str) -> str:
    try:
        return enum_type(value).value
    except ValueError:
        raise UsageError(code, f"unknown value {value!r}; choose one of: {', '.join(enum_type)}") from None


def list_items(
    session: Session, *, status: ItemStatus | str | None = None, reason: str | None = None,
    decision: Decision | str | None = None, min_score: float | None = None, limit: int = 50, offset: int = 0,
    sort: str = "oldest",
) -> list[FlaggedItem]:  # fmt: skip
    """The review queue, filtered and sorted in the database (``oldest`` first, highest ``score`` first
    with unscored items last, or most recently ``last_seen`` first; ties by id). Codes:
    ``usage.status.invalid``, ``usage.reason.invalid``, ``usage.decision.invalid``,
    ``usage.min_score.invalid`` (not in [0, 1]), ``usage.limit.invalid`` (not in 1..MAX_LIMIT),
    ``usage.offset.invalid``, ``usage.sort.invalid``.

    >>> # [i.id for i in list_items(session, status="open", reason="likely-synthetic", min_score=0.9)]
    """
    orders = {
        "oldest": (FlaggedItem.id,),
        "score": (FlaggedItem.score.desc().nulls_last(), FlaggedItem.id),
        "last_seen": (FlaggedItem.last_seen_at.desc(), FlaggedItem.id),
    }
    if sort not in orders:
        raise UsageError("usage.sort.invalid", f"unknown sort {sort!r}; choose one of: {', '.join(orders)}")
    query = select(FlaggedItem).order_by(*orders[sort])
    if status is not None:
        query = query.where(FlaggedItem.status == _enum_filter(ItemStatus, status, "usage.status.invalid"))
    if decision is not None:
        query = query.where(FlaggedItem.decision == _enum_filter(Decision, decision, "usage.decision.invalid"))
    if reason is not None:
        if reason not in REASONS:
            raise UsageError("usage.reason.invalid", f"unknown reason {reason!r}; choose one of: {', '.join(REASONS)}")
        # ``reasons`` is a JSON list of known words: the quoted word matches exactly one element.
        query = query.where(FlaggedItem.reasons.contains(json.dumps(reason), autoescape=True))
    if min_score is not None:
        if not 0.0 <= min_score <= 1.0:
            raise UsageError("usage.min_score.invalid", f"min_score {min_score} is not within [0, 1]")
        query = query.where(FlaggedItem.score >= min_score)
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError("usage.limit.invalid", f"limit must be within 1..{MAX_LIMIT}")
    if offset < 0:
        raise UsageError("usage.offset.invalid", "offset must not be negative")
    return list(session.scalars(query.limit(limit).offset(offset)))


def get_item(session: Session, item_id: int) -> FlaggedItem:
    """One flagged item, or ``audit.item.not_found``.

    >>> # get_item(session, 7).status
    """
    item = session.get(FlaggedItem, item_id, populate_existing=True)
    if item is None:
        raise RegistryError("audit.item.not_found", f"no flagged item with id {item_id}")
    return item


def item_history(session: Session, item_id: int) -> list[AuditEvent]:
    """The item's audit events, oldest first (``audit.item.not_found`` for an unknown id).

    >>> # [e.action for e in item_history(session, 7)]
    """
    get_item(session, item_id)
    return list(session.scalars(select(AuditEvent).where(AuditEvent.item_id == item_id).order_by(AuditEvent.seq)))


def _review(session: Session, settings: Settings, item_id: int, reviewer: str, action: Action,
            payload: Mapping[str, Any], now: datetime | None) -> FlaggedItem:  # fmt: skip
    reviewer, moment = _actor(reviewer), _utc(now)
    lock_chain(session)
    item = get_item(session, item_id)
    _step(session, settings, item, _state_of(item), reviewer, action, payload, moment)
    if action is Action.DECIDED:
        item.decided_at = moment
        session.flush()
    return item


def claim(
    session: Session, settings: Settings, item_id: int, reviewer: str, now: datetime | None = None
) -> FlaggedItem:
    """Take an open item for review (event ``claimed``). Codes: ``audit.item.not_found``,
    ``audit.item.claimed`` (someone else holds it), ``audit.item.decided``, ``usage.actor.invalid``.

    >>> # claim(session, settings, 7, "ana").status
    """
    return _review(session, settings, item_id, reviewer, Action.CLAIMED, {}, now)


def release(
    session: Session, settings: Settings, item_id: int, reviewer: str, now: datetime | None = None
) -> FlaggedItem:
    """Give a claimed item back to the queue (event ``released``). Codes: ``audit.item.not_found``,
    ``audit.item.not_claimed`` (*reviewer* does not hold it), ``audit.item.decided``.

    >>> # release(session, settings, 7, "ana").status
    """
    return _review(session, settings, item_id, reviewer, Action.RELEASED, {}, now)


def decide(
    session: Session, settings: Settings, item_id: int, reviewer: str, decision: Decision | str, note: str,
    now: datetime | None = None,
) -> FlaggedItem:  # fmt: skip
    """Record the reviewer's decision on an item they hold (event ``decided``; final).

    Codes: ``usage.decision.invalid``, ``usage.note.required`` / ``usage.note.too_long``,
    ``audit.item.not_found``, ``audit.item.not_claimed``, ``audit.item.decided``.

    >>> # decide(session, settings, 7, "ana", Decision.MANIPULATED, "face pasted from another photo")
    """
    chosen = parse_decision(decision)
    text = _text(note, "usage.note.required", "the decision's note")
    return _review(session, settings, item_id, reviewer, Action.DECIDED, {"decision": chosen.value, "note": text}, now)
