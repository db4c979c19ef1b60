"""Provenance routes: verify an upload, register signed manifests, read records and the log, manage signers.

=================================  ==========  =====================================================
route                              who         success
=================================  ==========  =====================================================
``POST /v1/verify``                any key     200 verdict (+ ``flagged_item``)
``POST /v1/records``               signer      201 record, leaf, inclusion proof, tree head, sidecar
``GET /v1/records/{id}``           any key     200 record
``GET /v1/log/head``               public      200 newest signed tree head
``GET /v1/log/proof/{id}``         public      200 inclusion proof of a record under a signed head
``GET /v1/log/consistency``        public      200 RFC 6962 consistency proof between two sizes
``GET|POST /v1/signers``           admin       200 list / 201 registered public key
``POST /v1/signers/{name}/revoke`` admin       200 the revoked signer
=================================  ==========  =====================================================

The log routes are public on purpose: a transparency log is only worth something if anyone
can audit it, and they reveal hashes and signed heads only. Verification needs a key
because it is expensive (the detector) and feeds the review queue.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import shutil
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from authenticity.api import schemas
from authenticity.api.deps import ApiContext, get_context, require_roles, spool_upload
from authenticity.errors import AuthenticityError, RegistryError, VerificationError
from authenticity.provenance.keys import PublicKey
from authenticity.provenance.manifest import Manifest, format_timestamp
from authenticity.provenance.registration import register_device_manifest
from authenticity.registry import db, log, repository
from authenticity.registry.apikeys import AuthError, Principal, Role
from authenticity.registry.models import Signer

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["provenance"])
_ANY = require_roles(Role.ADMIN, Role.SIGNER, Role.REVIEWER)
_MAX_ID = 2**31 - 1  # record.id is a 32-bit integer column
_MAX_SIZE = 2**63 - 1
_ERRORS: dict[int | str, dict[str, object]] = {
    s: {"model": schemas.ErrorResponse} for s in (400, 401, 403, 404, 409, 413, 415, 422, 503)
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.post("/verify", response_model=schemas.VerdictResponse, responses=_ERRORS)
async def verify(
    request: Request, principal: Principal = Depends(_ANY), ctx: ApiContext = Depends(get_context)
) -> schemas.VerdictResponse:
    """Upload media as multipart/form-data (part ``file``); get its verdict. The file name is ignored."""
    folder = ctx.upload_dir()
    try:
        try:
            media = await spool_upload(request, ctx, folder)
            verdict = await run_in_threadpool(ctx.verify, media)
        except AuthenticityError as exc:
            ctx.metrics.uploads_rejected.labels(exc.code).inc()
            # Messages name the file; ours is a server path the client has no business seeing.
            raise type(exc)(exc.code, exc.message.replace(str(folder / "upload"), "upload"), hint=exc.hint) from None
        ctx.metrics.verdicts.labels(verdict.state.value).inc()
        verdict = dataclasses.replace(verdict, path="upload")  # the review queue must not see our temp path
        flagged = await run_in_threadpool(ctx.flag, verdict, media, principal.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    body = verdict.to_dict()
    body.update(path=None, flagged_item=flagged)
    return schemas.VerdictResponse.model_validate(body)


def signer_response(signer: Signer) -> schemas.SignerResponse:
    """The API view of a signer row."""
    rev = signer.revocation
    return schemas.SignerResponse(
        name=signer.name, algorithm=signer.algorithm, key_id=signer.key_id,
        created_at=format_timestamp(signer.created_at), revoked=rev is not None,
        untrusted_from=format_timestamp(rev.untrusted_from) if rev else None, reason=rev.reason if rev else None,
    )  # fmt: skip


def register_manifest(
    ctx: ApiContext, signer_id: int, data: dict[str, Any], signature: bytes
) -> schemas.RegistrationResponse:
    """Register a device-signed manifest (checks and transaction in
    :func:`authenticity.provenance.registration.register_device_manifest`) and shape the response."""
    limits = ctx.limits
    reg, sidecar = register_device_manifest(
        ctx.engine(), ctx.log_key(), signer_id, data, signature,
        max_age=limits.manifest_max_age, max_skew=limits.manifest_max_skew,
    )  # fmt: skip
    return schemas.RegistrationResponse(
        record_id=reg.record_id, content_digest=sidecar.manifest.content_digest, leaf_index=reg.leaf_index,
        logged_at=sidecar.logged_at, inclusion_proof=schemas.InclusionProofModel.model_validate(reg.proof.to_dict()),
        tree_head=schemas.TreeHeadModel.model_validate(reg.head.to_dict()), sidecar=json.loads(sidecar.to_json()),
    )  # fmt: skip


@router.post("/records", status_code=201, response_model=schemas.RegistrationResponse, responses=_ERRORS)
def register(
    body: schemas.RegistrationRequest,
    principal: Principal = Depends(require_roles(Role.SIGNER)),
    ctx: ApiContext = Depends(get_context),
) -> schemas.RegistrationResponse:
    """A capture device registers a manifest it signed; the key must be bound to the manifest's signer."""
    try:
        signature = base64.b64decode(body.signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError("provenance.signature.malformed", "signature is not valid base64") from exc
    if principal.signer_id is None:  # create_api_key never makes one, but the row could be edited
        raise AuthError("auth.forbidden", f"key {principal.name!r} is not bound to a signer")
    return register_manifest(ctx, principal.signer_id, body.manifest, signature)


@router.get("/records/{record_id}", response_model=schemas.RecordResponse, responses=_ERRORS)
def get_record(
    record_id: int = PathParam(ge=1, le=_MAX_ID),
    _: Principal = Depends(_ANY),
    ctx: ApiContext = Depends(get_context),
) -> schemas.RecordResponse:
    """One registered record: its manifest, signature, signer and log position."""
    with db.session_scope(ctx.engine(), read_only=True) as session:
        record = repository.get_record(session, record_id)
        return schemas.RecordResponse(
            id=record.id, content_digest=record.content_digest, media_type=record.media_type,
            size_bytes=record.size_bytes, signer=record.signer.name, key_id=record.signer.key_id,
            manifest=Manifest.from_json(record.manifest).to_dict(), signature=_b64(record.signature),
            logged_at=format_timestamp(record.logged_at), leaf_index=record.leaf.leaf_index,
            leaf_hash=_b64(record.leaf.leaf_hash),
        )  # fmt: skip


@router.get("/log/head", response_model=schemas.TreeHeadModel, responses=_ERRORS)
def log_head(ctx: ApiContext = Depends(get_context)) -> schemas.TreeHeadModel:
    """The newest signed tree head (404 ``log.tree_head.not_found`` while the log is empty)."""
    with db.session_scope(ctx.engine(), read_only=True) as session:
        head = log.latest_tree_head(session)
    if head is None:
        raise RegistryError("log.tree_head.not_found", "the log is empty")
    return schemas.TreeHeadModel.model_validate(head.to_dict())


@router.get("/log/proof/{record_id}", response_model=schemas.ProofResponse, responses=_ERRORS)
def log_proof(
    record_id: int = PathParam(ge=1, le=_MAX_ID),
    tree_size: int | None = Query(None, ge=1, le=_MAX_SIZE),
    ctx: ApiContext = Depends(get_context),
) -> schemas.ProofResponse:
    """Inclusion proof of a record's leaf under the signed head of ``tree_size`` (default: newest)."""
    with db.session_scope(ctx.engine(), read_only=True) as session:
        record = repository.get_record(session, record_id)
        proof = log.inclusion_proof(session, record.leaf.leaf_index, tree_size)
        head = log.tree_head_at(session, proof.tree_size)
        return schemas.ProofResponse(
            record_id=record.id, content_digest=record.content_digest, leaf_hash=_b64(record.leaf.leaf_hash),
            inclusion_proof=schemas.InclusionProofModel.model_validate(proof.to_dict()),
            tree_head=schemas.TreeHeadModel.model_validate(head.to_dict()),
        )  # fmt: skip


@router.get("/log/consistency", response_model=schemas.ConsistencyResponse, responses=_ERRORS)
def log_consistency(
    first: int = Query(ge=1, le=_MAX_SIZE),
    second: int = Query(ge=1, le=_MAX_SIZE),
    ctx: ApiContext = Depends(get_context),
) -> schemas.ConsistencyResponse:
    """Consistency proof from tree size ``first`` to ``second`` (422 if first > second, 404 past the head)."""
    if first > second:
        raise RegistryError("log.proof.out_of_range", f"first ({first}) is larger than second ({second})")
    with db.session_scope(ctx.engine(), read_only=True) as session:
        size = log.tree_size(session)
        if second > size:
            raise RegistryError("log.tree_head.not_found", f"the log has {size} leaves, not {second}")
        hashes = log.consistency_proof(session, first, second)
        heads = [schemas.TreeHeadModel.model_validate(log.tree_head_at(session, n).to_dict()) for n in (first, second)]
    return schemas.ConsistencyResponse(first=first, second=second, hashes=[_b64(h) for h in hashes],
                                       first_tree_head=heads[0], second_tree_head=heads[1])  # fmt: skip


def _public_key(text: str) -> PublicKey:
    """PEM ``PUBLIC KEY`` or bare base64 DER SPKI → key (armour stripped here; no crypto import)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("-----"):
        if lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
            raise VerificationError("provenance.key.malformed", "expected a PEM 'PUBLIC KEY' block")
        lines = lines[1:-1]
    try:
        der = base64.b64decode("".join(lines), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError("provenance.key.malformed", "public key is neither PEM nor base64 DER") from exc
    return PublicKey.from_spki(der)


@router.post("/signers", status_code=201, response_model=schemas.SignerResponse, responses=_ERRORS)
def create_signer(
    body: schemas.SignerCreate,
    _: Principal = Depends(require_roles(Role.ADMIN)),
    ctx: ApiContext = Depends(get_context),
) -> schemas.SignerResponse:
    """Register a device's public key under a name (the private key stays on the device)."""
    repository.validate_signer_name(body.name)
    key = _public_key(body.public_key)
    with db.session_scope(ctx.engine()) as session:
        return signer_response(repository.add_signer(session, body.name, key, datetime.now(UTC)))


@router.get("/signers", response_model=list[schemas.SignerResponse], responses=_ERRORS)
def list_signers(
    _: Principal = Depends(require_roles(Role.ADMIN)), ctx: ApiContext = Depends(get_context)
) -> list[schemas.SignerResponse]:
    """Every signer with its revocation state."""
    with db.session_scope(ctx.engine(), read_only=True) as session:
        return [signer_response(s) for s in repository.list_signers(session)]


@router.post("/signers/{name}/revoke", response_model=schemas.SignerResponse, responses=_ERRORS)
def revoke_signer(
    body: schemas.RevokeRequest,
    name: str = PathParam(max_length=64),
    _: Principal = Depends(require_roles(Role.ADMIN)),
    ctx: ApiContext = Depends(get_context),
) -> schemas.SignerResponse:
    """Revoke a signer; records logged from ``compromised_at`` (default: now) are no longer trusted."""
    when = body.compromised_at.astimezone(UTC) if body.compromised_at else None
    with db.session_scope(ctx.engine()) as session:
        repository.revoke_signer(session, name, body.reason, datetime.now(UTC), when)
        return signer_response(repository.get_signer(session, name))
