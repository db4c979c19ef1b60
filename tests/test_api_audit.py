"""The audit HTTP API on a real SQLite file and a real PostgreSQL database: queue, claims, decisions,
reports, media, exports and the chain check, with every refusal asserted by its exact code.

Flagged content comes in the way it does in production: a reviewer uploads a file to ``/v1/verify``.
The file carries our own C2PA Content Credentials and one quantisation step changed after signing,
so provenance alone (no detector) says ``tampered``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from authenticity.api.app import create_app
from authenticity.config import Settings
from authenticity.media import sha256_file
from authenticity.provenance.c2pa import DigitalSourceType
from authenticity.provenance.c2pa_write import embed_c2pa
from authenticity.provenance.ca import init_ca, issue_signer_certificate
from authenticity.provenance.keys import generate_signing_key
from authenticity.registry import db
from authenticity.registry.apikeys import Role
from authenticity.registry.models import AuditEvent, FlaggedItem
from authenticity.registry.store import open_registry

from .conftest import write_photo
from .test_api import TEST_LIMITS, assert_error, bearer, new_key, upload
from .test_api_abuse import _bomb_png

CA_PASSPHRASE = b"ca passphrase"


def tampered_jpeg(folder: Path, seed: int, size: tuple[int, int] = (160, 200)) -> bytes:
    """A JPEG with our Content Credentials whose image data changed after signing."""
    cfg = Settings(home=folder / "ca-home")  # a CA of its own, outside the server's home
    if not (cfg.home / "ca").exists():
        init_ca(cfg, CA_PASSPHRASE)
    key = generate_signing_key()
    chain = issue_signer_certificate(cfg, f"cam-{seed}", key.public_key, CA_PASSPHRASE)
    src, dst = write_photo(folder / f"src-{seed}.jpg", seed=seed, size=size), folder / f"signed-{seed}.jpg"
    embed_c2pa(src, dst, key=key, cert_chain_pem=chain, claim_generator="authenticity", title=src.name,
               digital_source_type=DigitalSourceType.DIGITAL_CAPTURE)  # fmt: skip
    return change_quantisation(dst.read_bytes())


def change_quantisation(jpeg: bytes) -> bytes:
    """Raise the DC step of the first quantisation table by one: every block's brightness shifts a
    little, the file still decodes cleanly, and the bytes no longer match what was signed."""
    data, at = bytearray(jpeg), 2
    while data[at] == 0xFF and data[at + 1] != 0xDB:  # walk the segments (a manifest may hold FF DB too)
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    assert data[at : at + 2] == b"\xff\xdb", "no quantisation table"
    data[at + 5] = data[at + 5] + 1 if data[at + 5] < 255 else 254
    return bytes(data)


@dataclass
class Audit:
    client: TestClient
    settings: Settings
    reviewer: str
    other: str  # a second reviewer
    admin: str
    signer: str
    tmp: Path

    def get(self, url: str, key: str | None = None, **kw: Any) -> Any:
        return self.client.get(url, headers=bearer(key or self.reviewer), **kw)

    def post(self, url: str, key: str | None = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.post(url, headers={**bearer(key or self.reviewer), **(headers or {})}, **kw)

    def flag(self, seed: int) -> tuple[int, bytes]:
        """Upload a tampered file; the flagged item's id and the bytes."""
        data = tampered_jpeg(self.tmp, seed)
        response = upload(self.client, self.reviewer, data)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "tampered", response.json()["codes"]
        return int(response.json()["flagged_item"]), data


@pytest.fixture
def audit(settings: Settings, tmp_path: Path) -> Any:
    with TestClient(create_app(settings, detector=False, limits=TEST_LIMITS)) as client:
        # A signer key needs a signer: register one directly (the signer admin API has its own tests).
        from datetime import UTC, datetime

        from authenticity.registry import repository

        with db.session_scope(open_registry(settings)) as session:
            repository.add_signer(session, "cam-1", generate_signing_key().public_key, datetime.now(UTC))
        yield Audit(client, settings, new_key(settings, "reviewer-1", Role.REVIEWER),
                    new_key(settings, "reviewer-2", Role.REVIEWER), new_key(settings, "admin-1", Role.ADMIN),
                    new_key(settings, "device-1", Role.SIGNER, "cam-1"), tmp_path)  # fmt: skip


def counts(settings: Settings) -> tuple[int, int]:
    with db.session_scope(open_registry(settings), read_only=True) as session:
        items = session.scalar(select(func.count()).select_from(FlaggedItem)) or 0
        events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    return int(items), int(events)


# --------------------------------------------------------------------------- flagging and the queue


def test_tampered_upload_is_flagged_and_a_second_identical_upload_counts_an_occurrence(audit: Audit) -> None:
    item_id, data = audit.flag(seed=1)
    again = upload(audit.client, audit.other, data)
    assert again.json()["flagged_item"] == item_id
    listed = audit.get("/v1/audit/items").json()
    assert [(i["id"], i["reasons"], i["occurrences"], i["status"], i["state"]) for i in listed] == [
        (item_id, ["tampered"], 2, "open", "tampered")
    ]
    assert listed[0]["has_media"] is True and "media_path" not in listed[0]
    detail = audit.get(f"/v1/audit/items/{item_id}").json()
    assert detail["verdict"]["state"] == "tampered" and detail["verdict"]["path"] == "upload"
    assert "c2pa.content.mismatch" in detail["verdict"]["codes"]
    assert [(e["action"], e["actor"]) for e in detail["events"]] == [("flagged", "reviewer-1"),
                                                                      ("occurrence", "reviewer-2")]  # fmt: skip
    assert detail["content_digest"] == "sha256:" + __import__("hashlib").sha256(data).hexdigest()


def test_claim_release_decide_then_chain_check_and_exports(audit: Audit) -> None:
    item_id, _ = audit.flag(seed=2)
    base = f"/v1/audit/items/{item_id}"
    assert audit.post(f"{base}/claim").json()["claimed_by"] == "reviewer-1"
    assert audit.post(f"{base}/claim").json()["status"] == "claimed"  # a retried claim is a no-op
    assert audit.post(f"{base}/release").json()["status"] == "open"
    assert audit.post(f"{base}/claim", key=audit.admin).json()["claimed_by"] == "admin-1"  # admins review too
    decided = audit.post(f"{base}/decide", key=audit.admin, json={"decision": "manipulated", "note": "=1+1 edit"})
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["decision"], decided.json()["note"]) == ("decided",
                                                                                               "manipulated",
                                                                                               "=1+1 edit")  # fmt: skip
    assert decided.json()["decided_at"] is not None

    report = audit.get("/v1/audit/check").json()
    assert report == {"ok": True, "events_checked": 6, "items_checked": 1, "problems": []}

    exported = audit.get("/v1/audit/export?format=csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="audit-export.csv"'
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["id"], r["decision"], r["claimed_by"], r["note"]) for r in rows] == [
        (str(item_id), "manipulated", "admin-1", "'=1+1 edit")  # a formula is neutralised for spreadsheets
    ]
    as_json = audit.get("/v1/audit/export?format=json").json()
    assert as_json["items"][0]["decision"] == "manipulated" and as_json["chain_head"]["seq"] == 6
    assert not any((audit.settings.home / "tmp" / "uploads").iterdir())  # export files are cleaned up


def test_queue_filters_limit_and_offset(audit: Audit) -> None:
    first, _ = audit.flag(seed=3)
    second, _ = audit.flag(seed=4)
    audit.post(f"/v1/audit/items/{second}/claim")
    audit.post(f"/v1/audit/items/{second}/decide", json={"decision": "inconclusive", "note": "cannot tell"})

    def ids(query: str) -> list[int]:
        response = audit.get(f"/v1/audit/items?{query}")
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()]

    assert ids("") == [first, second]
    assert ids("status=open") == [first] and ids("status=decided") == [second]
    assert ids("decision=inconclusive") == [second] and ids("decision=manipulated") == []
    assert ids("reason=tampered") == [first, second] and ids("reason=report") == []
    assert ids("min_score=0.5") == []  # no detector ran: no score
    assert ids("limit=1") == [first] and ids("limit=1&offset=1") == [second]
    assert ids("sort=last_seen") == [second, first] and ids("sort=oldest") == [first, second]
    assert_error(audit.get("/v1/audit/items?sort=random"), 422, "usage.sort.invalid")


# --------------------------------------------------------------------------- reports


def test_report_by_upload_then_by_digest_by_any_role(audit: Audit) -> None:
    photo = write_photo(audit.tmp / "reported.png", seed=5)
    created = audit.client.post("/v1/reports", headers=bearer(audit.signer),
                                files={"file": ("../../evil.png", photo.read_bytes(), "text/html")},
                                data={"reason": "face swapped <b>"})  # fmt: skip
    assert created.status_code == 200, created.text
    item = created.json()
    assert (item["reasons"], item["status"], item["occurrences"], item["media_type"]) == (
        ["report"], "open", 1, "image/png")  # fmt: skip
    assert item["content_digest"] == sha256_file(photo) and item["state"] is None
    again = audit.post("/v1/reports", json={"content_digest": item["content_digest"], "reason": "still fake"})
    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["occurrences"]) == (item["id"], 2)
    events = audit.get(f"/v1/audit/items/{item['id']}").json()["events"]
    assert [(e["action"], e["actor"], e["payload"]["note"]) for e in events] == [
        ("reported", "device-1", "face swapped <b>"), ("reported", "reviewer-1", "still fake")]  # fmt: skip
    media = audit.get(f"/v1/audit/items/{item['id']}/media")
    assert media.content == photo.read_bytes() and media.headers["content-type"] == "image/png"
    assert not any((audit.settings.home / "tmp" / "uploads").iterdir())


def test_report_of_a_flagged_item_by_digest_merges_the_reason(audit: Audit) -> None:
    item_id, _ = audit.flag(seed=6)
    digest = audit.get(f"/v1/audit/items/{item_id}").json()["content_digest"]
    merged = audit.post("/v1/reports", json={"content_digest": digest, "reason": "seen on a news site"})
    assert merged.json()["reasons"] == ["tampered", "report"] and merged.json()["occurrences"] == 2


def test_report_refusals(audit: Audit) -> None:
    unknown = "sha256:" + "ab" * 32
    assert_error(audit.post("/v1/reports", json={"content_digest": unknown, "reason": "x"}), 404,
                 "audit.item.not_found")  # fmt: skip
    assert_error(audit.post("/v1/reports", json={"content_digest": "md5:abc", "reason": "x"}), 422,
                 "usage.digest.invalid")  # fmt: skip
    assert_error(audit.post("/v1/reports", json={"content_digest": unknown, "reason": "  "}), 422,
                 "usage.reason.required")  # fmt: skip
    assert_error(audit.post("/v1/reports", json={"reason": "x"}), 422, "request.invalid")
    assert_error(audit.post("/v1/reports", json={"content_digest": unknown, "reason": "x", "extra": 1}), 422,
                 "request.invalid")  # fmt: skip
    assert_error(audit.post("/v1/reports", content=b"{not json", headers={"Content-Type": "application/json"}),
                 422, "request.invalid")  # fmt: skip
    photo = write_photo(audit.tmp / "r.jpg", seed=7).read_bytes()
    assert_error(audit.post("/v1/reports", files={"file": ("r.jpg", photo)}), 422, "usage.reason.required")
    assert_error(audit.post("/v1/reports", files={"other": ("r.jpg", photo)}, data={"reason": "x"}), 422,
                 "upload.missing")  # fmt: skip
    assert_error(audit.post("/v1/reports", files={"file": ("r.txt", b"not media at all" * 300)},
                            data={"reason": "x"}), 415, "media.type.unsupported")  # fmt: skip
    assert_error(audit.post("/v1/reports", files={"file": ("r.jpg", photo)}, data={"reason": "x" * 20_000}), 400,
                 "upload.malformed")  # fmt: skip
    big = json.dumps({"content_digest": unknown, "reason": "x" * (TEST_LIMITS.max_json_bytes + 1)})
    assert_error(audit.post("/v1/reports", content=big, headers={"Content-Type": "application/json"}), 413,
                 "request.too_large")  # fmt: skip
    assert_error(audit.client.post("/v1/reports", json={"content_digest": unknown, "reason": "x"}), 401,
                 "auth.missing")  # fmt: skip
    # Regression: reported uploads were only sniffed, so a bomb or a broken file reached the reviewers' store.
    assert_error(audit.post("/v1/reports", files={"file": ("b.png", _bomb_png())}, data={"reason": "x"}), 422,
                 "media.image.too_large")  # fmt: skip
    truncated = photo[: len(photo) // 2]
    assert_error(audit.post("/v1/reports", files={"file": ("t.jpg", truncated)}, data={"reason": "x"}), 422,
                 "media.decode.failed")  # fmt: skip
    assert counts(audit.settings) == (0, 0)
    assert not (audit.settings.home / "audit" / "media").exists() or not any(
        (audit.settings.home / "audit" / "media").iterdir()
    )


# --------------------------------------------------------------------------- roles and refusals


AUDIT_ROUTES = [("GET", "/v1/audit/items"), ("GET", "/v1/audit/items/1"), ("POST", "/v1/audit/items/1/claim"),
                ("POST", "/v1/audit/items/1/release"), ("POST", "/v1/audit/items/1/decide"),
                ("GET", "/v1/audit/items/1/media"), ("GET", "/v1/audit/export"),
                ("GET", "/v1/audit/check")]  # fmt: skip


def test_audit_routes_need_a_reviewer_or_admin_key(audit: Audit) -> None:
    audit.flag(seed=8)
    for method, url in AUDIT_ROUTES:
        body: dict[str, Any] = {"json": {"decision": "inconclusive", "note": "n"}} if url.endswith("decide") else {}
        assert_error(audit.client.request(method, url, **body), 401, "auth.missing")
        assert_error(audit.client.request(method, url, headers=bearer("auth_00000000_" + "A" * 43), **body), 401,
                     "auth.invalid")  # fmt: skip
        error = assert_error(audit.client.request(method, url, headers=bearer(audit.signer), **body), 403,
                             "auth.forbidden")  # fmt: skip
        assert "device-1" in error["message"]
    assert counts(audit.settings) == (1, 1)  # nothing changed


def test_review_refusals_have_exact_codes(audit: Audit) -> None:
    item_id, _ = audit.flag(seed=9)
    base = f"/v1/audit/items/{item_id}"
    for method, url in AUDIT_ROUTES[1:6]:
        body: dict[str, Any] = {"json": {"decision": "inconclusive", "note": "n"}} if url.endswith("decide") else {}
        assert_error(audit.client.request(method, url.replace("/1", "/999"), headers=bearer(audit.reviewer), **body),
                     404, "audit.item.not_found")  # fmt: skip
    assert_error(audit.post(f"{base}/release"), 409, "audit.item.not_claimed")
    assert_error(audit.post(f"{base}/decide", json={"decision": "inconclusive", "note": "n"}), 409,
                 "audit.item.not_claimed")  # fmt: skip
    audit.post(f"{base}/claim")
    assert_error(audit.post(f"{base}/claim", key=audit.other), 409, "audit.item.claimed")
    assert_error(audit.post(f"{base}/release", key=audit.other), 409, "audit.item.not_claimed")
    assert_error(audit.post(f"{base}/decide", key=audit.other, json={"decision": "manipulated", "note": "n"}), 409,
                 "audit.item.not_claimed")  # fmt: skip
    assert_error(audit.post(f"{base}/decide", json={"decision": "fake", "note": "n"}), 422, "usage.decision.invalid")
    assert_error(audit.post(f"{base}/decide", json={"decision": "manipulated", "note": " "}), 422,
                 "usage.note.required")  # fmt: skip
    assert_error(audit.post(f"{base}/decide", json={"decision": "manipulated", "note": "n" * 4001}), 422,
                 "usage.note.too_long")  # fmt: skip
    assert_error(audit.post(f"{base}/decide", json={"decision": "manipulated"}), 422, "request.invalid")
    assert_error(audit.post(f"{base}/decide", json={"decision": "manipulated", "note": "n", "by": "x"}), 422,
                 "request.invalid")  # fmt: skip
    assert audit.post(f"{base}/decide", json={"decision": "confirmed-authentic", "note": "ok"}).status_code == 200
    for action in ("claim", "release"):
        assert_error(audit.post(f"{base}/{action}"), 409, "audit.item.decided")
    assert_error(audit.post(f"{base}/decide", json={"decision": "manipulated", "note": "n"}), 409, "audit.item.decided")
    for query, code in [
        ("status=gone", "usage.status.invalid"),
        ("reason=bored", "usage.reason.invalid"),
        ("decision=maybe", "usage.decision.invalid"),
        ("min_score=2", "usage.min_score.invalid"),
        ("min_score=nan", "usage.min_score.invalid"),
        ("limit=0", "usage.limit.invalid"),
        ("limit=1001", "usage.limit.invalid"),
        ("offset=-1", "usage.offset.invalid"),
        ("min_score=abc", "request.invalid"),
        ("offset=99999999999999999999", "request.invalid"),
    ]:
        assert_error(audit.get(f"/v1/audit/items?{query}"), 422, code)  # fmt: skip
    assert_error(audit.get("/v1/audit/export?format=xml"), 422, "usage.format.invalid")
    assert_error(audit.get("/v1/audit/items/0"), 422, "request.invalid")
    assert_error(audit.get("/v1/audit/items/abc"), 422, "request.invalid")
    assert audit.get("/v1/audit/check").json()["ok"] is True


def test_media_is_a_nosniff_attachment_with_our_name(audit: Audit) -> None:
    item_id, data = audit.flag(seed=10)
    media = audit.get(f"/v1/audit/items/{item_id}/media")
    assert media.status_code == 200 and media.content == data
    assert media.headers["content-type"] == "image/jpeg"
    assert media.headers["content-disposition"] == f'attachment; filename="item-{item_id}.jpg"'
    assert media.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in media.headers["content-security-policy"]


def test_media_refusals_missing_edited_path_and_corrupt_copy(audit: Audit) -> None:
    item_id, _ = audit.flag(seed=11)
    engine = open_registry(audit.settings)
    with db.session_scope(engine, read_only=True) as session:
        stored = audit.settings.home / str(session.get(FlaggedItem, item_id).media_path)  # type: ignore[union-attr]
    for value, status, code in [("../../../../etc/passwd", 500, "audit.media.path_invalid"),
                                (None, 404, "audit.media.missing")]:  # fmt: skip
        with db.session_scope(engine) as session:
            session.execute(update(FlaggedItem).where(FlaggedItem.id == item_id).values(media_path=value))
        error = assert_error(audit.get(f"/v1/audit/items/{item_id}/media"), status, code)
        assert "passwd" not in error["message"]
    with db.session_scope(engine) as session:
        session.execute(update(FlaggedItem).where(FlaggedItem.id == item_id)
                        .values(media_path=str(stored.relative_to(audit.settings.home))))  # fmt: skip
    stored.chmod(0o600)
    stored.write_bytes(stored.read_bytes() + b"x")
    assert_error(audit.get(f"/v1/audit/items/{item_id}/media"), 500, "audit.media.corrupt")


@pytest.mark.parametrize("path", ["/v1/audit/items/..%2F..%2Fetc%2Fpasswd/media", "/v1/audit/items/../../etc/passwd",
                                  "/v1/audit/items/%2e%2e/media", "/v1/audit/items/1%00/media",
                                  "/v1/audit/items/1;rm/media", "/v1/audit/items/-1/media"])  # fmt: skip
def test_media_path_traversal_attempts_are_404_or_422(audit: Audit, path: str) -> None:
    audit.flag(seed=12)
    response = audit.get(path)
    assert response.status_code in (404, 422), response.text
    assert response.json()["error"]["code"] in ("request.route.not_found", "request.invalid")
    assert b"root:" not in response.content


def test_sql_injection_in_query_params_is_refused_and_tables_stay_intact(audit: Audit) -> None:
    audit.flag(seed=13)
    before = counts(audit.settings)
    attacks = ["open' OR '1'='1", "open'; DROP TABLE flagged_item; --", '"tampered"%', "%", "_", "\\", "1 OR 1=1"]
    for attack in attacks:
        for name in ("status", "reason", "decision"):
            assert audit.get("/v1/audit/items", params={name: attack}).status_code == 422
        assert audit.get("/v1/audit/items", params={"min_score": attack}).status_code == 422
        assert audit.get("/v1/audit/export", params={"format": attack}).status_code == 422
    assert counts(audit.settings) == before
    assert len(audit.get("/v1/audit/items").json()) == 1
    assert audit.get("/v1/audit/check").json()["ok"] is True


def test_chain_check_reports_an_edited_item_row(audit: Audit) -> None:
    item_id, _ = audit.flag(seed=14)
    with db.session_scope(open_registry(audit.settings)) as session:
        session.execute(update(FlaggedItem).where(FlaggedItem.id == item_id).values(decision="confirmed-authentic"))
    report = audit.get("/v1/audit/check").json()
    assert report["ok"] is False
    assert [p["code"] for p in report["problems"]] == ["audit.item.mismatch"]


def test_openapi_lists_the_audit_routes(audit: Audit) -> None:
    paths = audit.client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/audit/items",
        "/v1/audit/items/{item_id}",
        "/v1/audit/items/{item_id}/claim",
        "/v1/audit/items/{item_id}/release",
        "/v1/audit/items/{item_id}/decide",
        "/v1/audit/items/{item_id}/media",
        "/v1/audit/export",
        "/v1/audit/check",
        "/v1/reports",
    } <= set(paths)
    assert not any(p.startswith("/review") for p in paths)  # fmt: skip
