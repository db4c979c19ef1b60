"""Request and response models of the HTTP API (they shape the OpenAPI document at ``/docs``).

Binary values (signatures, hashes, keys) are standard base64; times are UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` exactly as in manifests and tree heads.

>>> ErrorResponse.model_validate({"error": {"code": "auth.missing", "message": "no key"}}).error.code
'auth.missing'
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "ConsistencyResponse",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "InclusionProofModel",
    "ProofResponse",
    "RecordResponse",
    "RegistrationRequest",
    "RegistrationResponse",
    "RevokeRequest",
    "SignerCreate",
    "SignerResponse",
    "TreeHeadModel",
    "VerdictResponse",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str = Field(examples=["registry.record.duplicate"])
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body."""

    error: ErrorDetail


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])


class VerdictResponse(BaseModel):
    """``Verdict.to_dict()`` plus the review-queue item it opened or updated (if any).

    ``path`` is always null: the uploaded file's name is never used, stored or echoed.
    """

    path: str | None = None
    state: str = Field(examples=["authentic"])
    codes: list[str]
    content_digest: str
    conflict: bool
    audit: bool
    evidence: dict[str, Any]
    flagged_item: int | None = None


class TreeHeadModel(BaseModel):
    tree_size: int
    root_hash: str
    signed_at: str
    key_id: str
    signature: str


class InclusionProofModel(BaseModel):
    leaf_index: int
    tree_size: int
    hashes: list[str]


class RegistrationRequest(_Strict):
    """A capture device registers what it signed.

    ``manifest`` is the manifest as a JSON object; the server canonicalises it (RFC 8785)
    and checks ``signature`` (base64) over ``MANIFEST_CONTEXT || canonical bytes``, so any
    spelling of the same object verifies and every other object does not.
    """

    manifest: dict[str, Any]
    signature: str = Field(max_length=1024)


class RegistrationResponse(BaseModel):
    """Everything the device needs: ``sidecar`` is the complete sidecar, ready to write next to the file."""

    record_id: int
    content_digest: str
    leaf_index: int
    logged_at: str
    inclusion_proof: InclusionProofModel
    tree_head: TreeHeadModel
    sidecar: dict[str, Any]


class RecordResponse(BaseModel):
    id: int
    content_digest: str
    media_type: str
    size_bytes: int
    signer: str
    key_id: str
    manifest: dict[str, Any]
    signature: str
    logged_at: str
    leaf_index: int
    leaf_hash: str


class ProofResponse(BaseModel):
    record_id: int
    content_digest: str
    leaf_hash: str
    inclusion_proof: InclusionProofModel
    tree_head: TreeHeadModel


class ConsistencyResponse(BaseModel):
    first: int
    second: int
    hashes: list[str]
    first_tree_head: TreeHeadModel
    second_tree_head: TreeHeadModel


class SignerCreate(_Strict):
    """``public_key``: PEM (``-----BEGIN PUBLIC KEY-----``) or base64 DER SubjectPublicKeyInfo.

    Keys are generated on the device; a private key never travels.
    """

    name: str = Field(max_length=64)
    public_key: str = Field(max_length=4096)


class SignerResponse(BaseModel):
    name: str
    algorithm: str
    key_id: str
    created_at: str
    revoked: bool
    untrusted_from: str | None = None
    reason: str | None = None


class RevokeRequest(_Strict):
    reason: str = Field(max_length=2000)
    compromised_at: AwareDatetime | None = None
