"""Audit of flagged content: policy rows, the review state machine, dedup, the signed chain, exports.

Workflow and chain tests run on a real SQLite file and a real PostgreSQL database (the ``settings``
fixture is parametrised over both); pure tests and file-only behaviour run once. Tampering is done
the way a DBA would: drop the append-only triggers, then edit rows with raw SQL — and ``check_chain``
must name exactly the events (seq) and codes affected. Verdicts are built directly (the policy reads
nothing else); ``test_audit_cli.py`` flags real verification results end to end.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import multiprocessing
import sqlite3
import stat
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import rfc8785
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from authenticity.audit import chain, policy, workflow
from authenticity.audit.exports import CSV_COLUMNS, export, export_labelled
from authenticity.audit.policy import Action, Decision, ItemState, ItemStatus, apply_event, flag_reasons
from authenticity.config import Settings
from authenticity.errors import AuthenticityError
from authenticity.media import MediaType, sha256_file
from authenticity.provenance.keys import generate_signing_key
from authenticity.provenance.keystore import ensure_log_key, trusted_log_key_ids
from authenticity.provenance.manifest import format_timestamp
from authenticity.registry import db
from authenticity.registry.models import AuditEvent, FlaggedItem, LogKey
from authenticity.registry.store import open_registry
from authenticity.verify import Detection, Verdict, VerdictState

from .conftest import write_photo
from .media_samples import write_video

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
R = TypeVar("R")


def verdict_for(path: Path | str, state: VerdictState = VerdictState.LIKELY_SYNTHETIC, *, score: float | None = 0.93,
                conflict: bool = False) -> Verdict:  # fmt: skip
    """A verdict about the bytes at *path* (or about a literal ``sha256:`` digest)."""
    digest = str(path) if str(path).startswith("sha256:") else sha256_file(Path(path))
    detection = None if score is None else Detection(score=score, label="synthetic", model={"name": "test"})
    return Verdict(str(path), state, ("test",), digest, detection=detection, conflict=conflict)


def fake_digest(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(repr(parts).encode()).hexdigest()


def run(engine: Engine, fn: Callable[[Session], R]) -> R:
    with db.session_scope(engine) as session:
        return fn(session)


def raises(code: str, fn: Callable[[], object]) -> None:
    with pytest.raises(AuthenticityError) as info:
        fn()
    assert info.value.code == code, info.value.diagnostics()


def events(engine: Engine) -> list[tuple[int, int | None, str, str]]:
    query = select(AuditEvent.seq, AuditEvent.item_id, AuditEvent.actor, AuditEvent.action).order_by(AuditEvent.seq)
    with engine.connect() as conn:
        return [(r.seq, r.item_id, r.actor, r.action) for r in conn.execute(query)]


def check(engine: Engine, settings: Settings) -> set[tuple[int, str]]:
    with db.session_scope(engine, read_only=True) as session:
        report = chain.check_chain(session, trusted_log_key_ids(settings))
    return {(p.seq, p.code) for p in report.problems}


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return open_registry(settings)


@dataclass
class Audit:
    """The workflow bound to one registry; each call is its own transaction, like a CLI command."""

    settings: Settings
    engine: Engine

    def flag(self, verdict: Verdict, media: Path | None = None, actor: str = "cli",
             now: datetime | None = None) -> FlaggedItem | None:  # fmt: skip
        return run(self.engine, lambda s: workflow.flag_verdict(s, self.settings, verdict, media=media, actor=actor,
                                                                now=now))  # fmt: skip

    def flagged(self, verdict: Verdict, media: Path | None = None, actor: str = "cli",
                now: datetime | None = None) -> FlaggedItem:  # fmt: skip
        item = self.flag(verdict, media, actor, now)
        assert item is not None
        return item

    def review(self, fn: Callable[..., FlaggedItem], item_id: int, *args: Any) -> FlaggedItem:
        return run(self.engine, lambda s: fn(s, self.settings, item_id, *args))

    def events(self) -> list[tuple[int, int | None, str, str]]:
        return events(self.engine)

    def check(self) -> set[tuple[int, str]]:
        return check(self.engine, self.settings)


@pytest.fixture
def audit(settings: Settings, engine: Engine) -> Audit:
    return Audit(settings, engine)


# --------------------------------------------------------------------------- policy (pure)

POLICY_ROWS = [
    (VerdictState.TAMPERED, False, ("tampered",)),
    (VerdictState.REVOKED, False, ()),
    (VerdictState.DECLARED_SYNTHETIC, False, ("declared-synthetic",)),
    (VerdictState.AUTHENTIC, False, ()),
    (VerdictState.AUTHENTIC, True, ("conflict",)),
    (VerdictState.AUTHENTIC_DERIVATIVE, False, ()),
    (VerdictState.AUTHENTIC_DERIVATIVE, True, ("conflict",)),
    (VerdictState.LIKELY_SYNTHETIC, False, ("likely-synthetic",)),
    (VerdictState.UNCERTAIN, False, ()),
    (VerdictState.UNVERIFIED, False, ()),
    (VerdictState.TAMPERED, True, ("tampered", "conflict")),  # not produced today; both reasons if it ever is
]


@pytest.mark.parametrize(("state", "conflict", "reasons"), POLICY_ROWS)
def test_policy_flags_exactly_the_review_states_and_conflicts(state: VerdictState, conflict: bool,
                                                              reasons: tuple[str, ...]) -> None:  # fmt: skip
    verdict = verdict_for(fake_digest(1), state, conflict=conflict)
    assert flag_reasons(verdict) == reasons
    assert bool(reasons) == verdict.audit  # the policy and Verdict.audit never disagree


def test_policy_covers_every_verdict_state() -> None:
    assert {row[0] for row in POLICY_ROWS} == set(VerdictState)


FLAGGED = {"content_digest": fake_digest("x"), "reasons": ["tampered"]}
OPEN = apply_event(None, Action.FLAGGED, "cli", FLAGGED)
HELD = apply_event(OPEN, Action.CLAIMED, "ana", {})
DONE = apply_event(HELD, Action.DECIDED, "ana", {"decision": "manipulated", "note": "patch"})


def test_state_machine_happy_path() -> None:
    assert ItemState(fake_digest("x"), ("tampered",), 1) == OPEN
    assert apply_event(HELD, Action.CLAIMED, "ana", {}) == HELD  # re-claiming your own claim is a no-op
    assert apply_event(HELD, Action.RELEASED, "ana", {}) == OPEN
    assert (DONE.status, DONE.decision, DONE.claimed_by, DONE.note) == (ItemStatus.DECIDED, Decision.MANIPULATED,
                                                                        "ana", "patch")  # fmt: skip
    again = apply_event(DONE, Action.OCCURRENCE, "cli", {"reasons": ["conflict", "tampered"]})
    assert (again.occurrences, again.reasons, again.status) == (2, ("tampered", "conflict"), ItemStatus.DECIDED)
    reported = apply_event(again, Action.REPORTED, "user", {"note": "fake"})
    assert (reported.occurrences, reported.reasons) == (3, ("tampered", "conflict", "report"))
    assert apply_event(None, Action.REPORTED, "user", FLAGGED).reasons == ("report",)


@pytest.mark.parametrize(("state", "action", "actor", "payload", "code"), [
    (OPEN, Action.FLAGGED, "cli", FLAGGED, "audit.item.exists"),
    (None, Action.OCCURRENCE, "cli", {}, "audit.item.not_found"),
    (None, Action.CLAIMED, "ana", {}, "audit.item.not_found"),
    (HELD, Action.CLAIMED, "bob", {}, "audit.item.claimed"),
    (DONE, Action.CLAIMED, "ana", {}, "audit.item.decided"),
    (OPEN, Action.RELEASED, "ana", {}, "audit.item.not_claimed"),
    (HELD, Action.RELEASED, "bob", {}, "audit.item.not_claimed"),
    (DONE, Action.RELEASED, "ana", {}, "audit.item.decided"),
    (OPEN, Action.DECIDED, "ana", {"decision": "manipulated"}, "audit.item.not_claimed"),
    (HELD, Action.DECIDED, "bob", {"decision": "manipulated"}, "audit.item.not_claimed"),
    (HELD, Action.DECIDED, "ana", {"decision": "fake-ish"}, "usage.decision.invalid"),
    (DONE, Action.DECIDED, "ana", {"decision": "manipulated"}, "audit.item.decided"),
    (OPEN, "deleted", "ana", {}, "audit.event.action.unknown"),
])  # fmt: skip
def test_state_machine_refusals(state: ItemState | None, action: str, actor: str, payload: dict[str, Any],
                                code: str) -> None:  # fmt: skip
    raises(code, lambda: apply_event(state, action, actor, payload))


def test_parse_decision_refuses_unknown_values() -> None:
    assert policy.parse_decision("confirmed-synthetic") is Decision.CONFIRMED_SYNTHETIC
    raises("usage.decision.invalid", lambda: policy.parse_decision("Confirmed-Synthetic"))


def test_event_hash_known_answer() -> None:
    """The hash is SHA-256 over domain || prev || JCS(body): recomputed here independently."""
    body: dict[str, Any] = {
        "seq": 7, "item_id": 3, "actor": "ana", "action": "claimed", "payload": {"b": 1, "a": [0.5, None]},
        "created_at": "2026-03-01T12:00:00.000000Z",
    }  # fmt: skip
    prev = bytes(range(32))
    expected = hashlib.sha256(b"authenticity.audit.chain.v1\x00" + prev + rfc8785.dumps(body)).digest()
    assert chain.event_hash(prev, **body) == expected
    assert chain.AUDIT_EVENT_CONTEXT not in (b"authenticity.manifest.v1\x00", b"authenticity.treehead.v1\x00")


# --------------------------------------------------------------------------- flagging and dedup


def test_flag_dedups_by_digest_counting_occurrences(audit: Audit, photo: Path) -> None:
    first = audit.flagged(verdict_for(photo, score=0.91), photo, "cli", T0)
    again = audit.flagged(verdict_for(photo, score=0.91), photo, "api", T0 + timedelta(hours=1))
    conflict = verdict_for(photo, VerdictState.AUTHENTIC, score=0.97, conflict=True)
    third = audit.flagged(conflict, None, "api", T0 + timedelta(hours=2))
    assert first.id == again.id == third.id
    item = run(audit.engine, lambda s: workflow.get_item(s, first.id))
    assert (item.occurrences, json.loads(item.reasons), item.status, item.score) == (
        3, ["likely-synthetic", "conflict"], "open", 0.97)  # fmt: skip
    assert json.loads(item.verdict or "")["state"] == "authentic"  # the latest verdict
    assert (item.first_seen_at, item.last_seen_at) == (T0, T0 + timedelta(hours=2))
    hex_digest = sha256_file(photo).removeprefix("sha256:")
    assert item.media_path == f"audit/media/{hex_digest}.jpg" and item.media_type == "image/jpeg"
    stored = audit.settings.home / item.media_path
    assert stored.read_bytes() == photo.read_bytes()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temporary files left
    assert audit.events() == [(1, item.id, "cli", "flagged"), (2, item.id, "api", "occurrence"),
                              (3, item.id, "api", "occurrence")]  # fmt: skip
    assert audit.check() == set()


@sqlite_only
def test_verdict_the_policy_does_not_select_writes_nothing(audit: Audit, photo: Path) -> None:
    assert audit.flag(verdict_for(photo, VerdictState.AUTHENTIC, score=0.1), photo) is None
    assert audit.events() == []
    assert not (audit.settings.home / "audit").exists() and not audit.settings.log_key_path.exists()


@sqlite_only
def test_media_copy_is_named_by_content_and_sniffed_type(audit: Audit, tmp_path: Path) -> None:
    disguised = write_photo(tmp_path / "a.png", seed=5).rename(tmp_path / "evil name.jpg")  # a PNG whose name lies
    item = audit.flagged(verdict_for(disguised), disguised)
    assert item.media_type == "image/png"
    assert item.media_path == f"audit/media/{sha256_file(disguised).removeprefix('sha256:')}.png"


@sqlite_only
def test_flag_refuses_media_that_is_not_the_verdicts(audit: Audit, tmp_path: Path) -> None:
    a, b = write_photo(tmp_path / "a.jpg", seed=1), write_photo(tmp_path / "b.jpg", seed=2)
    raises("audit.media.mismatch", lambda: audit.flag(verdict_for(a), b))
    assert audit.events() == []
    assert list((audit.settings.home / "audit" / "media").iterdir()) == []


@sqlite_only
def test_flag_without_media_then_with_it(audit: Audit, photo: Path) -> None:
    item = audit.flagged(verdict_for(photo), None)
    assert (item.media_type, item.media_path) == ("application/octet-stream", None)
    item = audit.flagged(verdict_for(photo), photo)
    assert item.media_type == "image/jpeg" and item.media_path is not None


@sqlite_only
@pytest.mark.parametrize("actor", ["", " ana", "x" * 65, "a\nb"])
def test_bad_actor_names_are_refused(audit: Audit, photo: Path, actor: str) -> None:
    raises("usage.actor.invalid", lambda: audit.flag(verdict_for(photo), actor=actor))
    assert audit.events() == []


@sqlite_only
def test_naive_times_and_non_json_payloads_are_refused(audit: Audit, photo: Path) -> None:
    naive = datetime(2026, 1, 1)
    raises("usage.time.naive", lambda: audit.flag(verdict_for(photo), now=naive))
    key = ensure_log_key(audit.settings)

    def append(payload: dict[str, Any], now: datetime) -> AuditEvent:
        return run(audit.engine, lambda s: chain.append_event(s, key=key, actor="cli", action="note", item_id=None,
                                                              payload=payload, now=now))  # fmt: skip

    raises("audit.payload.invalid", lambda: append({"x": float("nan")}, T0))
    raises("usage.time.naive", lambda: append({}, naive))
    assert audit.events() == []


@sqlite_only
def test_file_swapped_while_being_copied_is_refused(audit: Audit, photo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from authenticity.audit import _media

    monkeypatch.setattr(_media, "sniff_bytes", lambda head: MediaType.PNG)  # what the copy saw differs
    raises("media.file.changed", lambda: audit.flag(verdict_for(photo), photo))
    assert audit.events() == [] and list((audit.settings.home / "audit" / "media").iterdir()) == []


@sqlite_only
def test_item_row_with_invalid_values_is_refused_not_trusted(audit: Audit, photo: Path) -> None:
    item = audit.flagged(verdict_for(photo))
    with audit.engine.begin() as conn:
        conn.execute(update(FlaggedItem).where(FlaggedItem.id == item.id).values(status="bogus"))
    raises("audit.item.mismatch", lambda: audit.review(workflow.claim, item.id, "ana"))
    raises("audit.item.mismatch", lambda: audit.flag(verdict_for(photo)))
    assert audit.check() == {(1, "audit.item.mismatch")}


# --------------------------------------------------------------------------- reports


@sqlite_only
def test_reports_new_and_existing_content(audit: Audit, photo: Path) -> None:
    settings, engine, digest = audit.settings, audit.engine, sha256_file(photo)
    new = run(engine, lambda s: workflow.report(s, settings, media=photo, reason="  looks pasted  ", actor="user:1"))
    assert (json.loads(new.reasons), new.occurrences, new.verdict, new.media_type) == (["report"], 1, None,
                                                                                       "image/jpeg")  # fmt: skip
    same = run(engine, lambda s: workflow.report(s, settings, content_digest=digest.upper().replace("SHA256", "sha256"),
                                                 reason="again", actor="user:2"))  # fmt: skip
    assert same.id == new.id and same.occurrences == 2
    with db.session_scope(engine) as s:
        history = workflow.item_history(s, new.id)
        assert [(e.action, json.loads(e.payload)["note"]) for e in history] == [("reported", "looks pasted"),
                                                                                ("reported", "again")]  # fmt: skip
    assert json.loads(audit.flagged(verdict_for(photo)).reasons) == ["report", "likely-synthetic"]
    assert audit.check() == set()


@sqlite_only
@pytest.mark.parametrize(("kwargs", "code"), [
    ({"content_digest": fake_digest("unknown")}, "audit.item.not_found"),
    ({}, "usage.report.target_required"),
    ({"content_digest": "sha256:1234"}, "usage.digest.invalid"),
    ({"content_digest": fake_digest("other"), "media": "photo"}, "audit.media.mismatch"),
    ({"media": "text"}, "media.type.unsupported"),
    ({"media": "missing"}, "media.file.not_found"),
    ({"media": "photo", "reason": "   "}, "usage.reason.required"),
    ({"media": "photo", "reason": "x" * 4001}, "usage.reason.too_long"),
])  # fmt: skip
def test_report_refusals(settings: Settings, engine: Engine, photo: Path, tmp_path: Path, kwargs: dict[str, Any],
                         code: str) -> None:  # fmt: skip
    (tmp_path / "notes.txt").write_text("not media")
    files = {"photo": photo, "text": tmp_path / "notes.txt", "missing": tmp_path / "missing.jpg"}
    args = {"reason": "fake", **kwargs}
    if "media" in args:
        args["media"] = files[args["media"]]
    raises(code, lambda: run(engine, lambda s: workflow.report(s, settings, actor="user", **args)))
    assert events(engine) == []


# --------------------------------------------------------------------------- listing


@sqlite_only
def test_list_filters_and_pages(audit: Audit) -> None:
    rows = [(VerdictState.LIKELY_SYNTHETIC, 0.95, False), (VerdictState.TAMPERED, None, False),
            (VerdictState.AUTHENTIC, 0.7, True), (VerdictState.LIKELY_SYNTHETIC, 0.6, False)]  # fmt: skip
    ids = [audit.flagged(verdict_for(fake_digest(i), state, score=score, conflict=conflict)).id
           for i, (state, score, conflict) in enumerate(rows)]  # fmt: skip
    audit.review(workflow.claim, ids[1], "ana")
    audit.review(workflow.decide, ids[1], "ana", "manipulated", "patch")

    def listed(**kw: Any) -> list[int]:
        return [i.id for i in run(audit.engine, lambda s: workflow.list_items(s, **kw))]

    assert listed() == ids
    assert listed(status="open") == [ids[0], ids[2], ids[3]]
    assert listed(status=ItemStatus.DECIDED, decision="manipulated") == [ids[1]]
    assert listed(reason="likely-synthetic") == [ids[0], ids[3]]
    assert listed(reason="conflict") == [ids[2]]
    assert listed(min_score=0.7) == [ids[0], ids[2]]
    assert listed(limit=2, offset=1) == [ids[1], ids[2]]
    # Sorted in the database, so paging follows the order (the unscored item comes last by score).
    assert listed(sort="score") == [ids[0], ids[2], ids[3], ids[1]]
    assert listed(sort="score", limit=2, offset=1) == [ids[2], ids[3]]
    assert listed(sort="last_seen") == ids[::-1]  # flagged one after another; review actions are not sightings
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"status": "closed"}, "usage.status.invalid"), ({"reason": "%"}, "usage.reason.invalid"),
        ({"decision": "yes"}, "usage.decision.invalid"), ({"min_score": 1.5}, "usage.min_score.invalid"),
        ({"min_score": float("nan")}, "usage.min_score.invalid"), ({"limit": 0}, "usage.limit.invalid"),
        ({"limit": 1001}, "usage.limit.invalid"), ({"offset": -1}, "usage.offset.invalid"),
        ({"sort": "random"}, "usage.sort.invalid"),
    ]  # fmt: skip
    for kw, code in refusals:
        raises(code, functools.partial(listed, **kw))
    raises("audit.item.not_found", lambda: run(audit.engine, lambda s: workflow.get_item(s, 999)))
    raises("audit.item.not_found", lambda: run(audit.engine, lambda s: workflow.item_history(s, 999)))


# --------------------------------------------------------------------------- review state machine


def test_claim_release_decide_and_every_refusal(audit: Audit, photo: Path) -> None:
    iid = audit.flagged(verdict_for(photo), photo).id

    def do(fn: Callable[..., FlaggedItem], *args: Any) -> FlaggedItem:
        return audit.review(fn, iid, *args)

    raises("audit.item.not_claimed", lambda: do(workflow.release, "ana"))
    raises("audit.item.not_claimed", lambda: do(workflow.decide, "ana", "manipulated", "x"))
    assert (do(workflow.claim, "ana").status, do(workflow.claim, "ana").claimed_by) == ("claimed", "ana")
    raises("audit.item.claimed", lambda: do(workflow.claim, "bob"))
    raises("audit.item.not_claimed", lambda: do(workflow.release, "bob"))
    raises("audit.item.not_claimed", lambda: do(workflow.decide, "bob", "manipulated", "x"))
    assert (do(workflow.release, "ana").status, do(workflow.claim, "bob").claimed_by) == ("open", "bob")
    raises("usage.decision.invalid", lambda: do(workflow.decide, "bob", "fake", "x"))
    raises("usage.note.required", lambda: do(workflow.decide, "bob", "manipulated", " "))
    raises("usage.note.too_long", lambda: do(workflow.decide, "bob", "manipulated", "x" * 4001))
    raises("usage.actor.invalid", lambda: do(workflow.claim, ""))
    done = do(workflow.decide, "bob", Decision.CONFIRMED_SYNTHETIC, "GAN fingerprints", T0)
    assert (done.status, done.decision, done.note, done.claimed_by, done.decided_at) == (
        "decided", "confirmed-synthetic", "GAN fingerprints", "bob", T0)  # fmt: skip
    final: list[tuple[Callable[..., FlaggedItem], tuple[str, ...]]] = [
        (workflow.claim, ("bob",)), (workflow.release, ("bob",)), (workflow.decide, ("bob", "manipulated", "x")),
    ]  # fmt: skip
    for fn, args in final:
        raises("audit.item.decided", functools.partial(do, fn, *args))
    raises("audit.item.not_found", lambda: audit.review(workflow.claim, iid + 1, "ana"))
    # Every refusal rolled back: only the successful steps are in the chain.
    assert [(a, e) for _, _, a, e in audit.events()] == [
        ("cli", "flagged"), ("ana", "claimed"), ("ana", "claimed"), ("ana", "released"), ("bob", "claimed"),
        ("bob", "decided")]  # fmt: skip
    assert audit.check() == set()


# --------------------------------------------------------------------------- the chain against a hostile DBA


@dataclass
class History:
    """seq 1 flagged A, 2 flagged B, 3 claimed A (ana), 4 occurrence B, 5 decided A (manipulated)."""

    settings: Settings
    engine: Engine
    a: int
    b: int


@pytest.fixture
def history(audit: Audit) -> History:
    a = audit.flagged(verdict_for(fake_digest("a")), now=T0)
    b = audit.flagged(verdict_for(fake_digest("b"), score=0.8), now=T0)
    audit.review(workflow.claim, a.id, "ana", T0)
    audit.flagged(verdict_for(fake_digest("b")), actor="api")
    audit.review(workflow.decide, a.id, "ana", "manipulated", "spliced", T0)
    assert [e[3] for e in audit.events()] == ["flagged", "flagged", "claimed", "occurrence", "decided"]
    assert audit.check() == set()
    return History(audit.settings, audit.engine, a.id, b.id)


@pytest.fixture
def hostile(history: History) -> History:
    """The same history after a DBA dropped the append-only triggers on ``audit_event``."""
    with history.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for action in ("update", "delete"):
                conn.execute(text(f"DROP TRIGGER audit_event_no_{action}"))
        else:
            conn.execute(text("DROP TRIGGER audit_event_append_only ON audit_event"))
    return history


def dba(h: History, *statements: Any) -> None:
    with h.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def payload_of(h: History, seq: int) -> dict[str, Any]:
    with h.engine.connect() as conn:
        data: dict[str, Any] = json.loads(conn.execute(select(AuditEvent.payload).where(AuditEvent.seq == seq))
                                          .scalar_one())  # fmt: skip
        return data


def edit(at: int, **values: Any) -> Any:
    return update(AuditEvent).where(AuditEvent.seq == at).values(**values)


def test_appending_is_refused_by_the_triggers(history: History) -> None:
    for statement in (edit(1, actor="mallory"), delete(AuditEvent).where(AuditEvent.seq == 5)):
        with pytest.raises(Exception, match=r"append-only|not allowed"):
            dba(history, statement)


@pytest.mark.parametrize(("name", "tamper", "expected"), [
    ("payload", lambda h: edit(2, payload=rfc8785.dumps({**payload_of(h, 2), "score": 0.1})),
     {(2, "audit.event.hash_mismatch")}),
    ("payload spelling", lambda h: edit(2, payload=json.dumps(payload_of(h, 2), indent=1).encode()),
     {(2, "audit.event.hash_mismatch")}),
    ("actor", lambda h: edit(1, actor="mallory"), {(1, "audit.event.hash_mismatch")}),
    ("timestamp", lambda h: edit(3, created_at=T0 - timedelta(days=1)), {(3, "audit.event.hash_mismatch")}),
    ("action", lambda h: edit(4, action="reported"),
     {(4, "audit.event.hash_mismatch"), (4, "audit.item.mismatch")}),  # replay adds "report" to B's reasons
    ("decision", lambda h: edit(5, payload=rfc8785.dumps({**payload_of(h, 5), "decision": "confirmed-authentic"})),
     {(5, "audit.event.hash_mismatch"), (5, "audit.item.mismatch")}),
    ("item", lambda h: edit(4, item_id=h.a),  # B's occurrence moved onto A: both rows now disagree
     {(4, "audit.event.hash_mismatch"), (5, "audit.item.mismatch"), (2, "audit.item.mismatch")}),
    ("signature", lambda h: edit(3, signature=bytes(64)), {(3, "audit.event.signature.invalid")}),
    ("deleted middle", lambda h: delete(AuditEvent).where(AuditEvent.seq == 4),
     {(4, "audit.chain.gap"), (2, "audit.item.mismatch")}),
    ("deleted newest", lambda h: delete(AuditEvent).where(AuditEvent.seq == 5), {(3, "audit.item.mismatch")}),
    ("prev link", lambda h: edit(4, prev_hash=bytes(32)),
     {(4, "audit.chain.broken"), (4, "audit.event.hash_mismatch")}),
])  # fmt: skip
def test_edited_or_deleted_events_are_detected(hostile: History, name: str, tamper: Callable[[History], Any],
                                               expected: set[tuple[int, str]]) -> None:  # fmt: skip
    dba(hostile, tamper(hostile))
    assert check(hostile.engine, hostile.settings) == expected


def test_reordered_events_break_the_links(hostile: History) -> None:
    dba(hostile, edit(3, seq=-1), edit(4, seq=3), edit(-1, seq=4))
    assert check(hostile.engine, hostile.settings) == {
        (3, "audit.chain.broken"), (3, "audit.event.hash_mismatch"), (4, "audit.chain.broken"),
        (4, "audit.event.hash_mismatch"), (5, "audit.chain.broken")}  # fmt: skip


def _rehash(h: History, seq: int, payload: dict[str, Any]) -> tuple[bytes, Any]:
    """What a DBA who knows the algorithm (but not the log key) writes: a correct hash for the edit."""
    with h.engine.connect() as conn:
        row = conn.execute(select(AuditEvent).where(AuditEvent.seq == seq)).one()
    digest = chain.event_hash(row.prev_hash, seq=seq, item_id=row.item_id, actor=row.actor, action=row.action,
                              payload=payload, created_at=format_timestamp(row.created_at))  # fmt: skip
    return digest, edit(seq, payload=rfc8785.dumps(payload), event_hash=digest)


def test_rehashed_edit_fails_the_signature_and_the_next_link(hostile: History) -> None:
    _, statement = _rehash(hostile, 2, {**payload_of(hostile, 2), "score": 0.1})
    dba(hostile, statement)
    assert check(hostile.engine, hostile.settings) == {(2, "audit.event.signature.invalid"), (3, "audit.chain.broken")}


def test_resigned_with_a_key_the_dba_registered_is_untrusted(hostile: History) -> None:
    own = generate_signing_key()
    digest, statement = _rehash(hostile, 2, {**payload_of(hostile, 2), "score": 0.1})
    dba(hostile, statement, insert(LogKey).values(key_id=own.key_id, algorithm=own.algorithm.value,
                                                  public_key=own.public_key.spki_der, created_at=T0),
        edit(2, key_id=own.key_id, signature=own.sign(chain.AUDIT_EVENT_CONTEXT, digest)))  # fmt: skip
    assert check(hostile.engine, hostile.settings) == {(2, "audit.key.untrusted"), (3, "audit.chain.broken")}


@pytest.mark.parametrize(("values", "seq"), [
    ({"status": "open"}, 5), ({"decision": "confirmed-authentic"}, 5), ({"claimed_by": "mallory"}, 5),
    ({"occurrences": 1}, 4), ({"note": "nothing to see"}, 5), ({"reasons": "[]"}, 4),
    ({"content_digest": fake_digest("c")}, 5),
])  # fmt: skip
def test_item_rows_that_disagree_with_their_events(history: History, values: dict[str, Any], seq: int) -> None:
    """``flagged_item`` is mutable (no trigger to drop): the replay of its events is the check."""
    target = history.a if seq == 5 else history.b
    dba(history, update(FlaggedItem).where(FlaggedItem.id == target).values(**values))
    assert check(history.engine, history.settings) == {(seq, "audit.item.mismatch")}


def test_item_inserted_without_events_has_no_history(history: History) -> None:
    dba(history, insert(FlaggedItem).values(content_digest=fake_digest("smuggled"), media_type="image/png",
                                            reasons='["report"]', occurrences=1, status="open", first_seen_at=T0,
                                            last_seen_at=T0))  # fmt: skip
    assert check(history.engine, history.settings) == {(0, "audit.item.mismatch")}


def test_events_that_break_the_state_machine_are_reported(history: History) -> None:
    """append_event is the low-level primitive: a caller that skips the workflow's checks is caught."""
    key = ensure_log_key(history.settings)
    run(history.engine, lambda s: chain.append_event(s, key=key, actor="bob", action="decided", item_id=history.b,
                                                     payload={"decision": "manipulated"}, now=T0))  # fmt: skip
    run(history.engine, lambda s: chain.append_event(s, key=key, actor="bob", action="erased", item_id=history.a,
                                                     payload={}, now=T0))  # fmt: skip
    assert check(history.engine, history.settings) == {(6, "audit.event.transition.invalid"),
                                                       (7, "audit.event.transition.invalid")}  # fmt: skip


@sqlite_only
def test_item_row_deleted_under_its_events(history: History) -> None:
    """Only possible with foreign keys off (SQLite per connection; PostgreSQL: dropping the constraint)."""
    raw = sqlite3.connect(str(history.engine.url.database), isolation_level=None)
    try:
        raw.execute("PRAGMA foreign_keys = OFF")  # outside a transaction, or SQLite ignores it
        raw.execute("DELETE FROM flagged_item WHERE id = ?", (history.b,))
    finally:
        raw.close()
    assert check(history.engine, history.settings) == {(4, "audit.item.mismatch")}


def test_log_key_not_configured_as_trusted(history: History) -> None:
    with db.session_scope(history.engine, read_only=True) as session:
        report = chain.check_chain(session, frozenset())
    assert {(p.seq, p.code) for p in report.problems} == {(s, "audit.key.untrusted") for s in range(1, 6)}
    assert (report.ok, report.events_checked, report.items_checked) == (False, 5, 2)


# --------------------------------------------------------------------------- concurrency

WORKERS, PER_WORKER = 4, 15
SHARED = fake_digest("shared")


def _audit_worker(home: str, url: str, worker: int, contested: int, barrier: Any, results: Any) -> None:
    try:
        cfg = Settings(home=Path(home), database_url=url, db_timeout=60)
        engine = open_registry(cfg)
        barrier.wait(timeout=60)
        try:
            run(engine, lambda s: workflow.claim(s, cfg, contested, f"w{worker}"))
            won = True
        except AuthenticityError as exc:
            assert exc.code == "audit.item.claimed", exc.code
            won = False
        audit, seqs = Audit(cfg, engine), []

        def flag_and_seq(session: Session, digest: str) -> int | None:
            workflow.flag_verdict(session, cfg, verdict_for(digest), media=None, actor=f"w{worker}")
            return session.scalar(select(func.max(AuditEvent.seq)))  # ours: the chain lock is still held

        for i in range(PER_WORKER):
            for digest in (SHARED, fake_digest(worker, i)):
                seqs.append(run(audit.engine, functools.partial(flag_and_seq, digest=digest)))
        results.put((worker, "ok", (won, seqs)))
    except BaseException:
        results.put((worker, "error", traceback.format_exc()))


@pytest.mark.slow
def test_concurrent_processes_keep_the_chain_contiguous(audit: Audit) -> None:
    settings, engine = audit.settings, audit.engine
    contested = audit.flagged(verdict_for(fake_digest("contested")))
    ensure_log_key(settings)  # the workers share the home; the key file itself is covered by keystore tests
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    url = settings.resolved_database_url
    procs = [ctx.Process(target=_audit_worker, args=(str(settings.home), url, w, contested.id, barrier, results))
             for w in range(WORKERS)]  # fmt: skip
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=240) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = [payload for _, status, payload in outcomes if status == "error"]
    assert not errors, "\n".join(errors)
    assert sum(payload[0] for *_, payload in outcomes) == 1  # exactly one claim won the race
    total = 1 + 1 + WORKERS * PER_WORKER * 2  # contested flag + its claim + every worker's flags
    with db.session_scope(engine) as session:
        seqs = list(session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        shared = session.scalars(select(FlaggedItem).where(FlaggedItem.content_digest == SHARED)).one()
        assert shared.occurrences == WORKERS * PER_WORKER
        assert session.scalar(select(func.count()).select_from(FlaggedItem)) == 2 + WORKERS * PER_WORKER
    assert seqs == list(range(1, total + 1))
    by_seq = {s: w for w, _, (_, worker_seqs) in outcomes for s in worker_seqs}
    switches = sum(by_seq.get(s) != by_seq.get(s + 1) for s in range(3, total))
    assert switches >= WORKERS, f"workers barely overlapped ({switches} switches)"
    assert audit.check() == set()


# --------------------------------------------------------------------------- exports


@pytest.fixture
def decided(audit: Audit, tmp_path: Path) -> dict[str, int]:
    """Items in every export-relevant state, with real images stored for reviewers."""
    decisions = {"fake": "confirmed-synthetic", "real": "confirmed-authentic", "edited": "manipulated",
                 "no_media": "confirmed-synthetic", "corrupt": "confirmed-authentic", "moved": "confirmed-synthetic",
                 "open": None}  # fmt: skip
    ids = {}
    for seed, (name, decision) in enumerate(decisions.items()):
        path = write_photo(tmp_path / "media" / f"{name}.jpg", seed=seed, size=(64, 80))
        ids[name] = audit.flagged(verdict_for(path), None if name == "no_media" else path, now=T0).id
        if decision is not None:
            audit.review(workflow.claim, ids[name], "ana", T0)
            note = '=HYPERLINK("x")' if name == "fake" else "checked"
            audit.review(workflow.decide, ids[name], "ana", decision, note, T0)
    return ids


def _export(engine: Engine, settings: Settings, fmt: str, out: Path) -> int:
    with db.session_scope(engine, read_only=True) as s:
        return export(s, settings, fmt, out)


@sqlite_only
def test_export_csv_and_json(settings: Settings, engine: Engine, decided: dict[str, int], tmp_path: Path) -> None:
    assert _export(engine, settings, "csv", tmp_path / "out" / "queue.csv") == 7
    with open(tmp_path / "out" / "queue.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_id = {int(r[0]): dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]}
    fake = by_id[decided["fake"]]
    assert (fake["decision"], fake["status"], fake["claimed_by"], fake["reasons"], fake["state"]) == (
        "confirmed-synthetic", "decided", "ana", "likely-synthetic", "likely-synthetic")  # fmt: skip
    assert fake["note"] == '\'=HYPERLINK("x")'  # a spreadsheet must not run the reviewer's note
    assert (fake["score"], fake["decided_at"], fake["first_seen_at"]) == ("0.93", format_timestamp(T0),
                                                                          format_timestamp(T0))  # fmt: skip
    assert by_id[decided["open"]]["decision"] == "" and by_id[decided["open"]]["status"] == "open"

    assert _export(engine, settings, "json", tmp_path / "queue.json") == 7
    body = json.loads((tmp_path / "queue.json").read_text())
    assert [i["id"] for i in body["items"]] == sorted(decided.values())
    assert body["chain_head"]["seq"] == len(events(engine))
    item = next(i for i in body["items"] if i["id"] == decided["fake"])
    assert item["note"] == '=HYPERLINK("x")' and item["reasons"] == ["likely-synthetic"]
    raises("usage.format.invalid", lambda: _export(engine, settings, "xml", tmp_path / "q.xml"))
    raises("usage.out.is_directory", lambda: _export(engine, settings, "csv", tmp_path))
    # Regression: an existing file was silently replaced (`--out` pointed at the registry would destroy it).
    before = (tmp_path / "out" / "queue.csv").read_bytes()
    raises("usage.out.exists", lambda: _export(engine, settings, "json", tmp_path / "out" / "queue.csv"))
    assert (tmp_path / "out" / "queue.csv").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["queue.csv"]  # no temporary files left


def _labelled(engine: Engine, settings: Settings, out: Path) -> Any:
    with db.session_scope(engine, read_only=True) as s:
        return export_labelled(s, settings, out)


def _sabotage_store(settings: Settings, engine: Engine, ids: dict[str, int]) -> None:
    with db.session_scope(engine) as s:
        corrupt = workflow.get_item(s, ids["corrupt"])
        (settings.home / str(corrupt.media_path)).write_bytes(b"\xff\xd8\xff swapped")
        workflow.get_item(s, ids["moved"]).media_path = "audit/media/../../../etc/passwd"


@sqlite_only
def test_export_labelled_writes_confirmed_images_only(settings: Settings, engine: Engine, decided: dict[str, int],
                                                      tmp_path: Path) -> None:  # fmt: skip
    _sabotage_store(settings, engine, decided)
    out = tmp_path / "labelled"
    result = _labelled(engine, settings, out)
    assert (result.real, result.fake) == (1, 1)
    assert sorted(result.skipped) == sorted([(decided["no_media"], "audit.media.missing"),
                                             (decided["corrupt"], "audit.media.corrupt"),
                                             (decided["moved"], "audit.media.path_invalid")])  # fmt: skip
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    digests = {n: sha256_file(tmp_path / "media" / f"{n}.jpg").removeprefix("sha256:") for n in ("fake", "real")}
    assert files == [f"fake/likely-synthetic/{digests['fake']}.jpg", f"real/likely-synthetic/{digests['real']}.jpg"]
    raises("usage.out.not_empty", lambda: _labelled(engine, settings, out))
    (tmp_path / "a-file").write_text("x")
    raises("usage.out.not_empty", lambda: _labelled(engine, settings, tmp_path / "a-file"))


@pytest.mark.slow
@sqlite_only
def test_detector_eval_reads_the_labelled_export(settings: Settings, engine: Engine, decided: dict[str, int],
                                                 tmp_path: Path, one_torch_thread: None) -> None:  # fmt: skip
    from typer.testing import CliRunner

    from authenticity.cli.app import app
    from authenticity.detection.evaluate import load_labelled_folder

    out = tmp_path / "labelled"
    _labelled(engine, settings, out)
    # Store untouched here: the "corrupt" (authentic) and "moved" (synthetic) items export too.
    labels = sorted((label, source) for _, label, source in load_labelled_folder(out))
    assert labels == [(0, "likely-synthetic")] * 2 + [(1, "likely-synthetic")] * 2
    result = CliRunner().invoke(app, ["detector", "eval", "--real", str(out / "real"), "--fake", str(out / "fake")])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "likely-synthetic" in result.output  # the per-source table names the flag reason


@sqlite_only
def test_export_labelled_leaves_videos_out(audit: Audit, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=3)
    item = audit.flagged(verdict_for(clip), clip)
    assert item.media_path is not None and item.media_path.endswith(".mp4")
    audit.review(workflow.claim, item.id, "ana")
    audit.review(workflow.decide, item.id, "ana", "confirmed-synthetic", "face swap")
    result = _labelled(audit.engine, audit.settings, tmp_path / "labelled")
    assert (result.real, result.fake, result.skipped) == (0, 0, ((item.id, "audit.media.not_image"),))


def test_stored_media_of_unsupported_type_is_never_written(tmp_path: Path) -> None:
    from authenticity.audit._media import store_media

    (tmp_path / "x.html").write_text("<script>")
    raises("media.type.unsupported", lambda: store_media(Settings(home=tmp_path / "home"), tmp_path / "x.html"))
    assert not (tmp_path / "home").exists()


def test_cutting_the_chain_tail_is_caught_by_the_head_pinned_outside_the_database(hostile: History) -> None:
    """Regression: deleting the newest event *and* rolling its item row back left a shorter chain that
    checked out; every committed append now pins (seq, hash) in HOME/audit/chain-head.json."""
    from authenticity.audit.checkpoint import read_checkpoint

    with hostile.engine.connect() as conn:
        newest = conn.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert read_checkpoint(hostile.settings) == (newest.seq, newest.event_hash)
    assert newest.action == "decided"
    dba(hostile, delete(AuditEvent).where(AuditEvent.seq == newest.seq),
        update(FlaggedItem).where(FlaggedItem.id == newest.item_id)
        .values(status="claimed", decision=None, note=None, decided_at=None))  # fmt: skip
    assert check(hostile.engine, hostile.settings) == set()  # the chain alone cannot tell
    with db.session_scope(hostile.engine, read_only=True) as session:
        report = chain.check_chain(session, trusted_log_key_ids(hostile.settings), read_checkpoint(hostile.settings))
    assert {(p.seq, p.code) for p in report.problems} == {(newest.seq, "audit.chain.truncated")}


def test_a_rolled_back_append_is_never_pinned(audit: Audit) -> None:
    from authenticity.audit.checkpoint import read_checkpoint

    with pytest.raises(RuntimeError), db.session_scope(audit.engine) as session:
        workflow.report(session, audit.settings, content_digest=None, media=write_photo(audit.settings.home / "r.jpg",
                        seed=3), reason="looks odd", actor="cli")  # fmt: skip
        raise RuntimeError("abort the transaction")
    assert read_checkpoint(audit.settings) is None
