"""Hostile requests: each gets its exact status and code, in the one error shape, and stores nothing.

Covers missing/wrong/revoked keys, role escalation, a device key registering another signer's
manifest, forged and malformed manifests, replays and stale manifests, hostile uploads (path
traversal in the file name, oversized, lying Content-Type, decompression bomb), SQL injection
in path and query parameters, and a crash inside a handler (500 without a traceback).
Registry-state cases run on SQLite and PostgreSQL; pure input cases on SQLite only.
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authenticity.api.app import create_app
from authenticity.provenance.keys import generate_signing_key
from authenticity.registry import apikeys, db
from authenticity.registry.apikeys import Role
from authenticity.registry.store import open_registry

from .conftest import write_photo
from .test_api import (
    DEVICE,
    TEST_LIMITS,
    Api,
    api,
    assert_error,
    b64,
    bearer,
    body_for_file,
    fake_digest,
    new_key,
    row_counts,
    signed_body,
    upload,
)

__all__ = ["api"]  # the fixture, re-exported for pytest

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
INJECTIONS = ["1 OR 1=1", "'; DROP TABLE record; --", "1; DROP TABLE record", "0x1", "-1"]


@pytest.fixture
def stored(api: Api, tmp_path: Path) -> Iterator[tuple[Api, dict[str, int]]]:
    """One registered record; yields the api and the row counts to compare against."""
    photo = write_photo(tmp_path / "registered.jpg", seed=5)
    r = api.client.post("/v1/records", headers=bearer(api.signer), json=body_for_file(api.device, photo))
    assert r.status_code == 201, r.text
    yield api, row_counts(api.settings)


def _register(api: Api, key: str, body: Any) -> Any:
    return api.client.post("/v1/records", headers=bearer(key), json=body)


# --------------------------------------------------------------------------- authentication and roles


@pytest.mark.parametrize(
    ("method", "url"),
    [("post", "/v1/verify"), ("post", "/v1/records"), ("get", "/v1/records/1"), ("get", "/v1/signers"),
     ("post", "/v1/signers"), ("post", "/v1/signers/cam-1/revoke")],
)  # fmt: skip
def test_no_key_is_401_auth_missing(stored: tuple[Api, dict[str, int]], method: str, url: str) -> None:
    api, before = stored
    response = api.client.request(method.upper(), url, content=b"{}" if method == "post" else None)
    assert_error(response, 401, "auth.missing")
    # /v1/verify refuses before reading the upload, so it closes; JSON bodies are read (capped) first.
    assert response.headers.get("connection") == ("close" if url == "/v1/verify" else None)
    assert response.headers["www-authenticate"] == "Bearer"
    assert row_counts(api.settings) == before


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer auth_0123abcd_" + "A" * 43}, {"X-API-Key": "auth_0123abcd_" + "B" * 43},
     {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic YWRtaW46YWRtaW4="},
     {"Authorization": "Bearer"}, {"X-API-Key": "' OR 1=1 --"}],
)  # fmt: skip
def test_wrong_key_is_401_auth_invalid(stored: tuple[Api, dict[str, int]], headers: dict[str, str]) -> None:
    api, before = stored
    assert_error(api.client.get("/v1/signers", headers=headers), 401, "auth.invalid")
    assert row_counts(api.settings) == before


def test_two_different_keys_in_one_request_is_401(stored: tuple[Api, dict[str, int]]) -> None:
    api, _ = stored
    assert_error(api.client.get("/v1/signers", headers={**bearer(api.admin), "X-API-Key": api.reviewer}), 401,
                 "auth.invalid")  # fmt: skip


def test_revoked_key_is_401_auth_revoked(stored: tuple[Api, dict[str, int]]) -> None:
    api, before = stored
    with db.session_scope(open_registry(api.settings)) as session:
        apikeys.revoke_api_key(session, "device-1", datetime.now(UTC))
    before = row_counts(api.settings)
    body = signed_body(api.device, digest=fake_digest(1))
    assert_error(_register(api, api.signer, body), 401, "auth.revoked")
    assert row_counts(api.settings) == before


@pytest.mark.parametrize(
    ("method", "url", "json"),
    [("get", "/v1/signers", None), ("post", "/v1/signers", {"name": "evil", "public_key": "x"}),
     ("post", f"/v1/signers/{DEVICE}/revoke", {"reason": "takeover"})],
)  # fmt: skip
def test_signer_and_reviewer_keys_cannot_use_admin_routes(
    stored: tuple[Api, dict[str, int]], method: str, url: str, json: Any
) -> None:
    api, before = stored
    for key in (api.signer, api.reviewer):
        response = api.client.request(method.upper(), url, headers=bearer(key), json=json)
        assert_error(response, 403, "auth.forbidden")
    assert row_counts(api.settings) == before


def test_reviewer_and_admin_keys_cannot_register_records(stored: tuple[Api, dict[str, int]]) -> None:
    api, before = stored
    for key in (api.reviewer, api.admin):
        assert_error(_register(api, key, signed_body(api.device, digest=fake_digest(2))), 403, "auth.forbidden")
    assert row_counts(api.settings) == before


def test_device_key_of_signer_a_cannot_register_a_manifest_of_signer_b(stored: tuple[Api, dict[str, int]]) -> None:
    api, _ = stored
    other = generate_signing_key()
    assert api.client.post("/v1/signers", headers=bearer(api.admin),
                           json={"name": "cam-b", "public_key": other.public_key.pem()}).status_code == 201  # fmt: skip
    before = row_counts(api.settings)
    assert_error(_register(api, api.signer, signed_body(other, digest=fake_digest(3))), 403,
                 "registry.manifest.key_mismatch")  # fmt: skip
    assert row_counts(api.settings) == before


def test_revoked_signer_cannot_register(stored: tuple[Api, dict[str, int]]) -> None:
    api, _ = stored
    r = api.client.post(f"/v1/signers/{DEVICE}/revoke", headers=bearer(api.admin), json={"reason": "stolen"})
    assert r.status_code == 200, r.text
    before = row_counts(api.settings)
    assert_error(_register(api, api.signer, signed_body(api.device, digest=fake_digest(4))), 403,
                 "registry.signer.revoked")  # fmt: skip
    assert row_counts(api.settings) == before


# --------------------------------------------------------------------------- forged, replayed, stale manifests


def test_replayed_registration_is_409_duplicate(api: Api) -> None:
    body = signed_body(api.device, digest=fake_digest(5))
    assert _register(api, api.signer, body).status_code == 201
    before = row_counts(api.settings)
    assert_error(_register(api, api.signer, body), 409, "registry.record.duplicate")
    assert row_counts(api.settings) == before


@pytest.mark.parametrize(
    ("delta", "code"),
    [(timedelta(minutes=-11), "registry.manifest.stale"), (timedelta(days=-400), "registry.manifest.stale"),
     (timedelta(minutes=5), "registry.manifest.future")],
)  # fmt: skip
def test_manifest_outside_the_freshness_window_is_refused(api: Api, delta: timedelta, code: str) -> None:
    before = row_counts(api.settings)
    body = signed_body(api.device, digest=fake_digest(6), signed_at=datetime.now(UTC) + delta)
    assert_error(_register(api, api.signer, body), 422, code)
    assert row_counts(api.settings) == before


def _forged(api: Api) -> dict[str, Any]:
    body = signed_body(api.device, digest=fake_digest(7))
    body["manifest"]["size_bytes"] += 1  # signed one size, claims another
    return body


def _huge_size(api: Api) -> dict[str, Any]:
    body = signed_body(api.device, digest=fake_digest(12))
    body["manifest"]["size_bytes"] = 2**60  # valid JSON, but beyond what RFC 8785 canonicalises
    return body


@pytest.mark.parametrize(
    ("make", "code"),
    [(_forged, "provenance.signature.invalid"),
     (lambda a: signed_body(a.device, digest=fake_digest(8)) | {"signature": "not base64!"},
      "provenance.signature.malformed"),
     (lambda a: {"manifest": {"version": 1}, "signature": "AA=="}, "manifest.malformed"),
     (lambda a: {"manifest": {"version": 2}, "signature": "AA=="}, "manifest.version.unsupported"),
     (lambda a: signed_body(a.device, digest=fake_digest(9), media_type="text/html"),
      "manifest.media_type.unsupported"),
     (_huge_size, "manifest.malformed"),
     (lambda a: signed_body(a.device, digest=fake_digest(10)) | {"extra": 1}, "request.invalid"),
     (lambda a: {"signature": "AA=="}, "request.invalid"),
     (lambda a: ["not", "an", "object"], "request.invalid")],
)  # fmt: skip
def test_malformed_or_forged_registrations_are_422(api: Api, make: Any, code: str) -> None:
    before = row_counts(api.settings)
    assert_error(_register(api, api.signer, make(api)), 422, code)
    assert row_counts(api.settings) == before


@sqlite_only
def test_request_body_that_is_not_json_or_too_large(api: Api) -> None:
    before = row_counts(api.settings)
    r = api.client.post("/v1/records", headers={**bearer(api.signer), "Content-Type": "application/json"}, content=b"{")
    assert_error(r, 422, "request.invalid")
    huge = signed_body(api.device, digest=fake_digest(11), claims={"pad": "x" * (TEST_LIMITS.max_json_bytes + 1)})
    assert_error(_register(api, api.signer, huge), 413, "request.too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
        yield b'{"manifest": {"claims": {"pad": "'
        for _ in range(TEST_LIMITS.max_json_bytes // 65536 + 2):
            yield b"x" * 65536

    r = api.client.post("/v1/records", headers={**bearer(api.signer), "Content-Type": "application/json"},
                        content=chunks())  # fmt: skip
    assert_error(r, 413, "request.too_large")
    assert row_counts(api.settings) == before


# --------------------------------------------------------------------------- hostile uploads


def _bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny, valid-looking PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@sqlite_only
def test_path_traversal_file_name_is_ignored(api: Api, photo: Path, tmp_path: Path) -> None:
    before = row_counts(api.settings)
    for name in ("../../etc/passwd", "../../../../tmp/evil.jpg", "/etc/passwd", "..\\..\\win.ini", "a\x00b.jpg"):
        r = upload(api.client, api.reviewer, photo.read_bytes(), filename=name)
        assert r.status_code == 200, r.text
        assert r.json()["path"] is None and name not in r.text
    uploads = api.settings.home / "tmp" / "uploads"
    assert list(uploads.iterdir()) == []
    assert not [p for p in tmp_path.rglob("*") if p.name in ("passwd", "evil.jpg", "win.ini")]
    assert row_counts(api.settings) == before


def _stream_to_app(api: Api, head: bytes, chunk: bytes, count: int) -> tuple[int, dict[str, Any], int]:
    """POST a chunked multipart body straight into the ASGI app; returns (status, body, chunks pulled).

    TestClient reads a request body completely before the app sees it, so it cannot show
    that the app stops reading; driving the app's ``receive`` directly can.
    """
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled > count:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += 1
        return {"type": "http.request", "body": head if pulled == 1 else chunk, "more_body": pulled <= count}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"authorization", f"Bearer {api.reviewer}".encode()),
               (b"content-type", b"multipart/form-data; boundary=b")]  # fmt: skip
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/verify", "raw_path": b"/v1/verify", "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("testserver", 80)}  # fmt: skip
    asyncio.run(api.client.app(scope, receive, send))  # type: ignore[arg-type]
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    return int(sent[0]["status"]), body, pulled - 1


@sqlite_only
def test_oversized_upload_is_413_before_the_rest_is_read(api: Api) -> None:
    limit = TEST_LIMITS.max_upload_bytes
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 4092
    refused = upload(api.client, api.reviewer, jpeg + b"\0" * 2 * limit)  # refused from its Content-Length
    assert_error(refused, 413, "upload.too_large")
    assert refused.headers["connection"] == "close"  # the server will not go on receiving the unread rest
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n' + jpeg
    status, body, pulled = _stream_to_app(api, head, b"\0" * 65536, 64)  # chunked: counted while streaming
    assert (status, body["error"]["code"]) == (413, "upload.too_large")
    assert pulled <= limit // 65536 + 1 < 64  # stopped at the first chunk past the limit
    assert list((api.settings.home / "tmp" / "uploads").iterdir()) == []


@sqlite_only
def test_content_is_sniffed_not_trusted(api: Api) -> None:
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    status, body, pulled = _stream_to_app(api, head, b"<html>not a photo</html>" * 200, 16)
    assert (status, body["error"]["code"]) == (415, "media.type.unsupported")
    assert pulled == 1  # refused from the first 4 KiB, the rest never read
    assert_error(upload(api.client, api.reviewer, b"GIF"), 415, "media.type.unsupported")
    assert_error(
        upload(api.client, api.reviewer, b"%PDF-1.7\n" * 1000, filename="x.jpg"), 415, "media.type.unsupported"
    )


@sqlite_only
@pytest.mark.parametrize(
    ("data", "status", "code"),
    [(_bomb_png(), 422, "media.image.too_large"), (b"", 422, "media.file.empty")],
)
def test_bomb_and_empty_uploads(api: Api, data: bytes, status: int, code: str) -> None:
    error = assert_error(upload(api.client, api.reviewer, data, filename="bomb.png"), status, code)
    assert str(api.settings.home) not in error["message"]  # our temp path is not echoed


@sqlite_only
def test_upload_framing_errors(api: Api, photo: Path) -> None:
    h = bearer(api.reviewer)
    assert_error(api.client.post("/v1/verify", headers=h, content=photo.read_bytes()), 400, "upload.malformed")
    assert_error(api.client.post("/v1/verify", headers=h, data={"note": "no file"}, files={"other": ("a", b"x")}), 422,
                 "upload.missing")  # fmt: skip
    two = [("file", ("a.jpg", photo.read_bytes(), "image/jpeg")), ("file", ("b.jpg", photo.read_bytes(), "image/jpeg"))]
    assert_error(api.client.post("/v1/verify", headers=h, files=two), 400, "upload.malformed")
    truncated = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n' + photo.read_bytes()
    r = api.client.post(
        "/v1/verify", headers={**h, "Content-Type": "multipart/form-data; boundary=b"}, content=truncated
    )
    assert_error(r, 400, "upload.malformed")


# --------------------------------------------------------------------------- injection, ranges, admin input


def test_sql_injection_in_path_and_query_is_4xx_and_tables_intact(stored: tuple[Api, dict[str, int]]) -> None:
    api, before = stored
    h = bearer(api.admin)
    for bad in INJECTIONS:
        assert_error(api.client.get(f"/v1/records/{bad}", headers=h), 422, "request.invalid")
        assert_error(api.client.get(f"/v1/log/proof/{bad}"), 422, "request.invalid")
        assert_error(api.client.get("/v1/log/consistency", params={"first": bad, "second": 1}), 422, "request.invalid")
        assert_error(api.client.post(f"/v1/signers/{bad}/revoke", headers=h, json={"reason": bad}), 404,
                     "registry.signer.not_found")  # fmt: skip
    r = api.client.post("/v1/signers", headers=h, json={"name": "'; DROP TABLE record; --", "public_key": "AA=="})
    assert_error(r, 422, "usage.signer_name.invalid")
    assert row_counts(api.settings) == before  # every table still there, nothing changed
    assert api.client.get("/v1/records/1", headers=h).status_code == 200


def test_log_ranges_and_missing_records(stored: tuple[Api, dict[str, int]]) -> None:
    api, before = stored
    assert_error(api.client.get("/v1/log/consistency?first=2&second=1"), 422, "log.proof.out_of_range")
    assert_error(api.client.get("/v1/log/consistency?first=1&second=2"), 404, "log.tree_head.not_found")
    assert_error(api.client.get("/v1/log/consistency?first=0&second=1"), 422, "request.invalid")
    assert_error(api.client.get("/v1/log/consistency?first=1"), 422, "request.invalid")
    assert_error(api.client.get("/v1/log/proof/1?tree_size=2"), 422, "log.proof.out_of_range")
    assert_error(api.client.get("/v1/log/proof/999"), 404, "registry.record.not_found")
    assert_error(api.client.get(f"/v1/records/{2**31}", headers=bearer(api.admin)), 422, "request.invalid")
    assert_error(api.client.get("/v1/records/999", headers=bearer(api.admin)), 404, "registry.record.not_found")
    assert row_counts(api.settings) == before


@sqlite_only
def test_empty_log_has_no_head(settings: Any) -> None:
    assert_error(TestClient(create_app(settings, detector=False)).get("/v1/log/head"), 404, "log.tree_head.not_found")


def test_signer_admin_errors(api: Api) -> None:
    h = bearer(api.admin)
    before = row_counts(api.settings)
    pem = api.device.public_key.pem()
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/v1/signers", {"name": "../evil", "public_key": pem}, 422, "usage.signer_name.invalid"),
        ("/v1/signers", {"name": "cam-x", "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n"}, 422,
         "provenance.key.malformed"),
        ("/v1/signers", {"name": "cam-x", "public_key": b64(b"\x30\x03garbage")}, 422, "provenance.key.malformed"),
        ("/v1/signers", {"name": DEVICE, "public_key": generate_signing_key().public_key.pem()}, 409,
         "registry.signer.exists"),
        ("/v1/signers", {"name": "cam-x", "public_key": pem}, 409, "registry.signer.key_exists"),
        ("/v1/signers/nobody/revoke", {"reason": "x"}, 404, "registry.signer.not_found"),
        (f"/v1/signers/{DEVICE}/revoke", {"reason": "  "}, 422, "usage.reason.required"),
        (f"/v1/signers/{DEVICE}/revoke", {"reason": "x", "compromised_at": "2999-01-01T00:00:00Z"}, 422,
         "usage.compromised_at.future"),
        (f"/v1/signers/{DEVICE}/revoke", {"reason": "x", "compromised_at": "2020-01-01T00:00:00"}, 422,
         "request.invalid"),
    ]  # fmt: skip
    for url, payload, status, code in cases:
        assert_error(api.client.post(url, headers=h, json=payload), status, code)
    assert row_counts(api.settings) == before
    assert api.client.post(f"/v1/signers/{DEVICE}/revoke", headers=h, json={"reason": "x"}).status_code == 200
    assert_error(api.client.post(f"/v1/signers/{DEVICE}/revoke", headers=h, json={"reason": "y"}), 409,
                 "registry.signer.already_revoked")  # fmt: skip


@sqlite_only
def test_unknown_route_and_method(api: Api) -> None:
    assert_error(api.client.get("/v1/nothing"), 404, "request.route.not_found")
    assert_error(api.client.delete("/v1/log/head"), 405, "request.method.not_allowed")


@sqlite_only
def test_crash_in_a_handler_is_500_without_details(
    settings: Any, photo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, detector=False, limits=TEST_LIMITS)

    def boom(path: Path) -> Any:
        raise RuntimeError("secret detail /etc/shadow")

    app.state.context.verify = boom
    client = TestClient(app, raise_server_exceptions=False)
    key = new_key(settings, "reviewer-1", Role.REVIEWER)
    error = assert_error(upload(client, key, photo.read_bytes()), 500, "internal.error")
    assert "secret" not in error["message"]
    assert "secret detail" in caplog.text  # the traceback is logged server-side
