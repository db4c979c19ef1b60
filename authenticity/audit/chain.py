"""The tamper-evident audit chain over ``audit_event``: append, and check against a hostile DBA.

Each event commits to its predecessor::

    event_hash = SHA-256(EVENT_DOMAIN || prev_hash || JCS({seq, item_id, actor, action, payload, created_at}))

(JCS = RFC 8785 canonical JSON; ``prev_hash`` of the first event is 32 zero bytes), and the log key
signs ``event_hash`` under :data:`AUDIT_EVENT_CONTEXT`, a context of its own so an audit signature
can never be replayed as a manifest or tree-head signature, nor the other way round.

Threat model: triggers make the table append-only, but a DBA can drop them. Editing an event then
breaks its hash; recomputing the hash breaks the signature (the log key lives outside the
database); deleting or reordering events breaks ``seq`` contiguity or the ``prev_hash`` links; and
editing the mutable ``flagged_item`` row is caught by replaying its events. Deleting the *newest*
events leaves a valid shorter chain; it is caught only when the item rows still reflect them.

>>> # with db.session_scope(engine) as s: append_event(s, key=ensure_log_key(settings), actor="ana",
>>> #     action="claimed", item_id=3, payload={}, now=datetime.now(UTC))
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import rfc8785
from sqlalchemy import select
from sqlalchemy.orm import Session

from authenticity.audit.policy import ItemState, apply_event
from authenticity.errors import AuthenticityError, UsageError
from authenticity.provenance.keys import PublicKey, SigningKey
from authenticity.provenance.manifest import format_timestamp
from authenticity.registry import db
from authenticity.registry.models import AuditEvent, FlaggedItem, LogKey

__all__ = [
    "AUDIT_EVENT_CONTEXT",
    "EVENT_DOMAIN",
    "GENESIS_HASH",
    "ChainProblem",
    "ChainReport",
    "append_event",
    "check_chain",
    "event_hash",
    "lock_chain",
]

AUDIT_EVENT_CONTEXT = b"authenticity.audit.event.v1\x00"
EVENT_DOMAIN = b"authenticity.audit.chain.v1\x00"
GENESIS_HASH = bytes(32)
_MAX_PROBLEMS = 200


def event_hash(
    prev_hash: bytes, *, seq: int, item_id: int | None, actor: str, action: str, payload: Any, created_at: str
) -> bytes:
    """The hash that links an event to its predecessor (pure; *created_at* as :func:`format_timestamp` spells it).

    >>> event_hash(GENESIS_HASH, seq=1, item_id=None, actor="a", action="x", payload={},
    ...            created_at="2026-01-01T00:00:00.000000Z").hex()[:8]
    '92611b72'
    """
    body = {"seq": seq, "item_id": item_id, "actor": actor, "action": action, "payload": payload,
            "created_at": created_at}  # fmt: skip
    return hashlib.sha256(EVENT_DOMAIN + prev_hash + rfc8785.dumps(body)).digest()


def lock_chain(session: Session) -> None:
    """Serialise chain appends (and the item reads that decide them) for the rest of this transaction.

    The transparency log's lock is reused on purpose: an audit append may also insert the log key's
    ``log_key`` row, and one lock means a log append can never race it for that insert.
    """
    db.lock_log(session)


def _ensure_log_key_row(session: Session, key: SigningKey, now: datetime) -> None:
    if session.get(LogKey, key.key_id) is None:
        session.add(LogKey(key_id=key.key_id, algorithm=key.algorithm.value,
                           public_key=key.public_key.spki_der, created_at=now))  # fmt: skip
        session.flush()


def append_event(
    session: Session,
    *,
    key: SigningKey,
    actor: str,
    action: str,
    item_id: int | None,
    payload: Mapping[str, Any],
    now: datetime,
) -> AuditEvent:
    """Append one signed event at the end of the chain (takes :func:`lock_chain`; never commits).

    *payload* must be JSON (RFC 8785 refuses NaN and infinities: ``audit.payload.invalid``).
    """
    if now.tzinfo is None:
        raise UsageError("usage.time.naive", "audit timestamps must be timezone-aware")
    now = now.astimezone(UTC)
    try:
        payload_bytes = rfc8785.dumps(dict(payload))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise UsageError("audit.payload.invalid", f"audit payload is not canonical JSON: {exc}") from exc
    lock_chain(session)
    _ensure_log_key_row(session, key, now)
    newest = select(AuditEvent.seq, AuditEvent.event_hash).order_by(AuditEvent.seq.desc()).limit(1)
    last = session.execute(newest).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    digest = event_hash(prev, seq=seq, item_id=item_id, actor=actor, action=action,
                        payload=json.loads(payload_bytes), created_at=format_timestamp(now))  # fmt: skip
    event = AuditEvent(seq=seq, item_id=item_id, actor=actor, action=action, payload=payload_bytes, created_at=now,
                       prev_hash=prev, event_hash=digest, key_id=key.key_id,
                       signature=key.sign(AUDIT_EVENT_CONTEXT, digest))  # fmt: skip
    session.add(event)
    session.flush()
    return event


class ChainProblem(NamedTuple):
    """One finding: the event ``seq`` it is about (for an item row: its newest event, 0 if none)."""

    seq: int
    code: str
    message: str


@dataclass(frozen=True)
class ChainReport:
    """What :func:`check_chain` found."""

    events_checked: int
    items_checked: int
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _trusted_keys(session: Session, trusted_key_ids: frozenset[str]) -> dict[str, PublicKey]:
    keys = {}
    for row in session.scalars(select(LogKey).where(LogKey.key_id.in_(trusted_key_ids))):
        key = PublicKey.from_spki(row.public_key)
        if key.key_id == row.key_id:  # a row holding some other key under a trusted id is not trusted
            keys[row.key_id] = key
    return keys


class _Checker:
    def __init__(self, keys: dict[str, PublicKey]) -> None:
        self.keys = keys
        self.problems: list[ChainProblem] = []
        self.states: dict[int, ItemState] = {}
        self.last_seq: dict[int, int] = {}
        self.bad_history: set[int] = set()

    def add(self, seq: int, code: str, message: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(ChainProblem(seq, code, message))

    def event(self, row: AuditEvent, expected_seq: int, prev: bytes) -> None:
        if row.seq != expected_seq:
            self.add(expected_seq, "audit.chain.gap", f"events {expected_seq}..{row.seq - 1} are missing")
        elif row.prev_hash != prev:
            self.add(row.seq, "audit.chain.broken", f"event {row.seq} does not link to event {row.seq - 1}")
        try:
            payload = json.loads(row.payload)
            canonical = rfc8785.dumps(payload) == row.payload
        except (ValueError, rfc8785.CanonicalizationError):
            payload, canonical = None, False
        recomputed = event_hash(row.prev_hash, seq=row.seq, item_id=row.item_id, actor=row.actor, action=row.action,
                                payload=payload, created_at=format_timestamp(row.created_at))  # fmt: skip
        if not canonical or recomputed != row.event_hash:
            self.add(row.seq, "audit.event.hash_mismatch", f"event {row.seq} was edited after it was written")
        key = self.keys.get(row.key_id)
        if key is None:
            self.add(row.seq, "audit.key.untrusted", f"event {row.seq}: signed by a key that is not a trusted log key")
        else:
            try:
                key.verify(AUDIT_EVENT_CONTEXT, row.event_hash, row.signature)
            except AuthenticityError:
                self.add(row.seq, "audit.event.signature.invalid", f"event {row.seq}: signature does not verify")
        if row.item_id is not None and isinstance(payload, dict):
            self._replay(row, payload)

    def _replay(self, row: AuditEvent, payload: dict[str, Any]) -> None:
        item_id = row.item_id
        assert item_id is not None
        self.last_seq[item_id] = row.seq
        if item_id in self.bad_history:
            return
        try:
            self.states[item_id] = apply_event(self.states.get(item_id), row.action, row.actor, payload)
        except AuthenticityError as exc:
            self.bad_history.add(item_id)
            self.add(row.seq, "audit.event.transition.invalid", f"event {row.seq} on item {item_id}: {exc.code}")

    def item(self, row: FlaggedItem) -> None:
        expected = self.states.get(row.id)
        seq = self.last_seq.get(row.id, 0)
        if row.id in self.bad_history:
            return
        if expected is None:
            self.add(seq, "audit.item.mismatch", f"item {row.id} has no audit history")
            return
        actual = (row.content_digest, _stored_reasons(row.reasons), row.occurrences, row.status, row.claimed_by,
                  row.decision, row.note)  # fmt: skip
        replayed = (
            expected.content_digest,
            expected.reasons,
            expected.occurrences,
            expected.status.value,
            expected.claimed_by,
            expected.decision.value if expected.decision else None,
            expected.note,
        )
        if actual != replayed:
            names = ("content_digest", "reasons", "occurrences", "status", "claimed_by", "decision", "note")
            fields = [name for name, a, b in zip(names, actual, replayed, strict=True) if a != b]
            self.add(seq, "audit.item.mismatch", f"item {row.id}: {', '.join(fields)} differ from its audit history")


def _stored_reasons(text: str) -> tuple[str, ...]:
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(r) for r in value) if isinstance(value, list) else ()


def check_chain(
    session: Session, trusted_key_ids: frozenset[str], pinned: tuple[int, bytes] | None = None
) -> ChainReport:
    """Recompute every link, hash and signature, and replay each item's events against its row.

    *trusted_key_ids* come from outside the database (:func:`~authenticity.provenance.keystore.trusted_log_key_ids`),
    and so does *pinned*, the newest head this host committed (:mod:`authenticity.audit.checkpoint`):
    a chain that no longer holds it was cut (``audit.chain.truncated``).

    >>> # check_chain(session, trusted_log_key_ids(settings)).ok
    """
    checker = _Checker(_trusted_keys(session, trusted_key_ids))
    expected_seq, prev, checked = 1, GENESIS_HASH, 0
    pinned_found = pinned is None
    for row in session.scalars(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000)):
        checker.event(row, expected_seq, prev)
        expected_seq, prev, checked = row.seq + 1, row.event_hash, checked + 1
        if pinned is not None and row.seq == pinned[0]:
            pinned_found = row.event_hash == pinned[1]
    if not pinned_found and pinned is not None:
        checker.add(pinned[0], "audit.chain.truncated",
                    f"the chain no longer holds event {pinned[0]}, the newest head pinned on this host")  # fmt: skip
    items = 0
    for item in session.scalars(select(FlaggedItem).order_by(FlaggedItem.id).execution_options(yield_per=2000)):
        checker.item(item)
        items += 1
    orphan = set(checker.states) - set(session.scalars(select(FlaggedItem.id)))
    for item_id in sorted(orphan):
        checker.add(checker.last_seq[item_id], "audit.item.mismatch", f"item {item_id} has events but no row")
    return ChainReport(checked, items, tuple(checker.problems))
