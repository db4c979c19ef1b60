"""The HTTP API on its happy paths, on a real SQLite file and a real PostgreSQL database.

A capture device (a real Ed25519 key generated in the test, never sent to the server)
is registered by an admin over HTTP, registers manifests of real JPEGs with its bound
``signer`` key, writes the sidecar from the response, and ``authenticity verify`` of the
file then says ``authentic``. Apps run with ``detector=False`` except one test that loads
the shipped detector. Helpers here are shared with ``test_api_abuse`` and ``test_serve_faults``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from authenticity.api.app import create_app
from authenticity.api.deps import ApiLimits
from authenticity.config import Settings
from authenticity.media import sha256_file
from authenticity.provenance.keys import Algorithm, SigningKey, generate_signing_key
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, PerceptualEntry, format_timestamp
from authenticity.provenance.sidecar import sidecar_path
from authenticity.registry import apikeys, db, merkle
from authenticity.registry.apikeys import Role
from authenticity.registry.log import InclusionProof, SignedTreeHead
from authenticity.registry.models import (
    ApiKey,
    LogLeaf,
    LogNode,
    PerceptualHash,
    Record,
    Revocation,
    Signer,
    TreeHead,
)
from authenticity.registry.store import open_registry

from .conftest import write_photo

DEVICE = "cam-1"
TEST_LIMITS = ApiLimits(max_upload_bytes=1024 * 1024, max_json_bytes=256 * 1024)
_TABLES = (ApiKey, LogLeaf, LogNode, PerceptualHash, Record, Revocation, Signer, TreeHead)


# --------------------------------------------------------------------------- helpers (shared)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_key(settings: Settings, name: str, role: Role, signer: str | None = None) -> str:
    """Create an API key through the use case (the CLI has its own tests)."""
    with db.session_scope(open_registry(settings)) as session:
        return apikeys.create_api_key(session, name, role, datetime.now(UTC), signer).secret


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def row_counts(settings: Settings) -> dict[str, int]:
    """Rows per registry table: 'nothing stored' means these did not change."""
    with db.session_scope(open_registry(settings), read_only=True) as session:
        return {m.__tablename__: int(session.scalar(select(func.count()).select_from(m)) or 0) for m in _TABLES}


def signed_body(
    device: SigningKey,
    *,
    digest: str,
    size: int = 1234,
    media_type: str = "image/jpeg",
    signed_at: datetime | None = None,
    perceptual: tuple[PerceptualEntry, ...] = (),
    claims: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON a device POSTs to /v1/records: its manifest and its signature over the canonical bytes."""
    manifest = Manifest(
        content_digest=digest, media_type=media_type, size_bytes=size, algorithm=device.algorithm,
        key_id=device.key_id, signed_at=format_timestamp(signed_at or datetime.now(UTC)),
        claims=dict(claims or {}), perceptual=perceptual,
    )  # fmt: skip
    return {"manifest": manifest.to_dict(), "signature": b64(device.sign(MANIFEST_CONTEXT, manifest.canonical_bytes()))}


def body_for_file(device: SigningKey, path: Path, **kwargs: Any) -> dict[str, Any]:
    """A device-side manifest of a real file, with its PDQ hashes when the file decodes."""
    from authenticity.media.pdq import pdq_file

    entries = tuple(PerceptualEntry(hash=h.hex, quality=h.quality) for h in pdq_file(path))
    return signed_body(device, digest=sha256_file(path), size=path.stat().st_size, perceptual=entries, **kwargs)


def fake_digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def upload(client: TestClient, key: str, data: bytes, filename: str = "photo.jpg", **kw: Any) -> Any:
    return client.post("/v1/verify", headers=bearer(key), files={"file": (filename, data, "image/jpeg")}, **kw)


def assert_error(response: Any, status: int, code: str) -> dict[str, str]:
    """Exact status, exact code, the one error shape, and never a traceback."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return dict(body["error"])


@dataclass
class Api:
    client: TestClient
    settings: Settings
    admin: str
    reviewer: str
    signer: str  # bound to DEVICE
    device: SigningKey


def make_api(settings: Settings, client: TestClient) -> Api:
    admin = new_key(settings, "admin-1", Role.ADMIN)
    device = generate_signing_key()
    created = client.post(
        "/v1/signers", headers=bearer(admin), json={"name": DEVICE, "public_key": device.public_key.pem()}
    )
    assert created.status_code == 201, created.text
    return Api(client, settings, admin, new_key(settings, "reviewer-1", Role.REVIEWER),
               new_key(settings, "device-1", Role.SIGNER, DEVICE), device)  # fmt: skip


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings, detector=False, limits=TEST_LIMITS)) as client:
        yield make_api(settings, client)


# --------------------------------------------------------------------------- operations


def test_healthz_ok_and_openapi_docs(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert "swagger" in api.client.get("/docs").text.lower()
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {"/v1/verify", "/v1/records", "/v1/records/{record_id}", "/v1/log/head", "/v1/log/proof/{record_id}",
            "/v1/log/consistency", "/v1/signers", "/v1/signers/{name}/revoke", "/healthz",
            "/metrics"} <= set(paths)  # fmt: skip


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_healthz_database_unreachable_is_503(settings: Settings) -> None:
    down = settings.model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none", "db_timeout": 1}
    )
    client = TestClient(create_app(down, detector=False))
    error = assert_error(client.get("/healthz"), 503, "registry.database.unreachable")
    assert "127.0.0.1" not in error["message"]  # infrastructure details stay in the server log


def test_metrics_count_requests_verdicts_and_rejected_uploads(api: Api, tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "m.jpg", seed=3)
    assert upload(api.client, api.reviewer, photo.read_bytes()).status_code == 200
    assert upload(api.client, api.reviewer, b"plain text, not media" * 10).status_code == 415
    text = api.client.get("/metrics").text
    assert 'authenticity_http_requests_total{method="POST",route="/v1/verify",status="200"} 1.0' in text
    assert 'authenticity_verdicts_total{state="unverified"} 1.0' in text
    assert 'authenticity_uploads_rejected_total{code="media.type.unsupported"} 1.0' in text
    assert 'authenticity_http_request_duration_seconds_count{method="POST",route="/v1/signers"} 1.0' in text


# --------------------------------------------------------------------------- signers (admin)


def test_signer_admin_register_list_revoke(api: Api) -> None:
    other = generate_signing_key(Algorithm.ECDSA_P256)
    created = api.client.post("/v1/signers", headers=bearer(api.admin),
                              json={"name": "cam-2", "public_key": b64(other.public_key.spki_der)})  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json() | {"created_at": None} == {
        "name": "cam-2", "algorithm": "ecdsa-p256", "key_id": other.key_id, "created_at": None,
        "revoked": False, "untrusted_from": None, "reason": None,
    }  # fmt: skip
    listed = api.client.get("/v1/signers", headers=bearer(api.admin)).json()
    assert [(s["name"], s["key_id"]) for s in listed] == [(DEVICE, api.device.key_id), ("cam-2", other.key_id)]
    revoked = api.client.post("/v1/signers/cam-2/revoke", headers=bearer(api.admin),
                              json={"reason": "lost", "compromised_at": "2020-01-02T03:04:05Z"})  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked"] is True
    assert revoked.json()["untrusted_from"] == "2020-01-02T03:04:05.000000Z"
    assert revoked.json()["reason"] == "lost"


# --------------------------------------------------------------------------- records and the log


def test_register_record_then_read_record_head_proofs(api: Api, tmp_path: Path) -> None:
    photos = [write_photo(tmp_path / f"p{i}.jpg", seed=10 + i) for i in range(3)]
    responses = []
    for photo in photos:
        r = api.client.post("/v1/records", headers=bearer(api.signer), json=body_for_file(api.device, photo))
        assert r.status_code == 201, r.text
        responses.append(r.json())
    assert [r["leaf_index"] for r in responses] == [0, 1, 2]
    last = responses[-1]
    assert last["tree_head"]["tree_size"] == 3 and last["sidecar"]["record_id"] == last["record_id"]
    assert row_counts(api.settings)["perceptual_hash"] == 3  # one PDQ row per image, same transaction

    record = api.client.get(f"/v1/records/{last['record_id']}", headers=bearer(api.reviewer)).json()
    assert record["content_digest"] == sha256_file(photos[-1])
    assert (record["signer"], record["key_id"], record["leaf_index"]) == (DEVICE, api.device.key_id, 2)
    assert record["manifest"] == last["sidecar"]["manifest"]

    head = api.client.get("/v1/log/head").json()
    assert head == last["tree_head"]
    sth = SignedTreeHead.from_dict(head)
    proof = api.client.get(f"/v1/log/proof/{responses[0]['record_id']}").json()
    assert proof["tree_head"] == head
    InclusionProof.from_dict(proof["inclusion_proof"]).verify(base64.b64decode(proof["leaf_hash"]), sth.root_hash)
    old = api.client.get(f"/v1/log/proof/{responses[0]['record_id']}?tree_size=1").json()
    assert old["inclusion_proof"] == {"leaf_index": 0, "tree_size": 1, "hashes": []}

    cons = api.client.get("/v1/log/consistency?first=1&second=3").json()
    first = SignedTreeHead.from_dict(cons["first_tree_head"])
    merkle.verify_consistency(1, 3, [base64.b64decode(h) for h in cons["hashes"]], first.root_hash, sth.root_hash)


def test_device_registration_over_http_then_cli_verify_says_authentic(api: Api, photo: Path) -> None:
    r = api.client.post("/v1/records", headers=bearer(api.signer),
                        json=body_for_file(api.device, photo, claims={"author": "Ana"}))  # fmt: skip
    assert r.status_code == 201, r.text
    sidecar_path(photo).write_text(json.dumps(r.json()["sidecar"]))
    command = [sys.executable, "-m", "authenticity", "verify", "--no-detector", "--json", str(photo)]
    result = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["state"] == "authentic"
    assert {"provenance.sidecar.present", "registry.record.found"} <= set(verdict["codes"])


def test_verify_upload_registered_and_unregistered(api: Api, tmp_path: Path) -> None:
    signed, unsigned = write_photo(tmp_path / "s.jpg", seed=20), write_photo(tmp_path / "u.jpg", seed=21)
    assert api.client.post("/v1/records", headers=bearer(api.signer),
                           json=body_for_file(api.device, signed)).status_code == 201  # fmt: skip
    good = upload(api.client, api.reviewer, signed.read_bytes())
    assert good.status_code == 200, good.text
    assert good.json()["state"] == "authentic" and good.json()["path"] is None
    assert good.json()["content_digest"] == sha256_file(signed)
    assert "detector.skipped" in good.json()["codes"]
    plain = api.client.post("/v1/verify", headers={"X-API-Key": api.admin},
                            files={"file": ("x", unsigned.read_bytes(), "application/octet-stream")})  # fmt: skip
    assert plain.status_code == 200, plain.text
    assert plain.json()["state"] == "unverified" and "registry.record.not_found" in plain.json()["codes"]
    assert "flagged_item" in plain.json()
    assert not any((api.settings.home / "tmp" / "uploads").iterdir())  # every request cleans up


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_verify_with_the_shipped_detector(settings: Settings, photo: Path) -> None:
    with TestClient(create_app(settings, limits=TEST_LIMITS)) as client:
        key = new_key(settings, "reviewer-1", Role.REVIEWER)
        response = upload(client, key, photo.read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    detector = body["evidence"]["detector"]
    assert detector is not None and 0.0 <= detector["score"] <= 1.0
    assert body["state"] in {"likely-synthetic", "uncertain", "unverified"}
    assert f"detector.{detector['label']}" in body["codes"]
