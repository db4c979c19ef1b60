"""Registering a signed manifest: record, perceptual-hash rows, log leaf and signed tree head.

Two callers, one code path: :class:`authenticity.provenance.capture.Signer` (the key is
local, the CLI and Python API sign at capture) and ``POST /v1/records`` (a capture device
signed the manifest itself and sends it with an API key bound to its signer), through
:func:`register_device_manifest`. Either way everything happens in one transaction, under
the log lock, so a crash leaves either all of it or none of it.

>>> # with db.session_scope(engine) as s:
>>> #     db.lock_log(s); reg = append_record(s, signer=row, manifest=m, manifest_bytes=b, signature=sig,
>>> #                                         log_key=key, logged_at=now)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from authenticity.errors import ManifestError, RegistryError
from authenticity.media.sniff import MediaType
from authenticity.provenance.keys import PublicKey, SigningKey
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, format_timestamp, parse_timestamp
from authenticity.provenance.sidecar import Sidecar
from authenticity.registry import db, log, repository
from authenticity.registry.models import Signer

__all__ = ["Registration", "append_record", "register_device_manifest"]


@dataclass(frozen=True)
class Registration:
    """Where a registered record landed in the log, with the proof a sidecar carries."""

    record_id: int
    leaf_index: int
    logged_at: datetime
    proof: log.InclusionProof
    head: log.SignedTreeHead

    def sidecar(self, manifest: Manifest, manifest_bytes: bytes, signature: bytes, public_key: PublicKey) -> Sidecar:
        return Sidecar(
            manifest=manifest, manifest_bytes=manifest_bytes, signature=signature, public_key=public_key,
            record_id=self.record_id, logged_at=format_timestamp(self.logged_at), proof=self.proof,
            tree_head=self.head,
        )  # fmt: skip


def append_record(
    session: Session,
    *,
    signer: Signer,
    manifest: Manifest,
    manifest_bytes: bytes,
    signature: bytes,
    log_key: SigningKey,
    logged_at: datetime,
) -> Registration:
    """Insert the record and its perceptual rows, append the log leaf, sign the new head.

    The caller holds the log lock (``db.lock_log``) and owns the transaction; a digest that
    is already registered raises ``registry.record.duplicate``.
    """
    record = repository.add_record(
        session, signer=signer, content_digest=manifest.content_digest, media_type=manifest.media_type,
        size_bytes=manifest.size_bytes, manifest=manifest_bytes, signature=signature, logged_at=logged_at,
    )  # fmt: skip
    repository.add_perceptual_hashes(session, record, manifest.perceptual)
    entry = log.entry_bytes(manifest_bytes, signature, logged_at)
    leaf_index, head = log.append_leaf(session, record.id, entry, log_key, logged_at)
    proof = log.inclusion_proof(session, leaf_index, head.tree_size)
    return Registration(record.id, leaf_index, logged_at, proof, head)


def register_device_manifest(
    engine: Engine,
    log_key: SigningKey,
    signer_id: int,
    data: dict[str, Any],
    signature: bytes,
    *,
    max_age: timedelta,
    max_skew: timedelta,
) -> tuple[Registration, Sidecar]:
    """Check a manifest a device signed, then register it.

    Checks in order: well-formed, known media type (``manifest.*``); signer active
    (``registry.signer.revoked``); the manifest names the key's signer
    (``registry.manifest.key_mismatch``); signature (``provenance.signature.invalid``);
    ``signed_at`` within *max_age* in the past and *max_skew* in the future
    (``registry.manifest.stale`` / ``.future``: the replay defence for a digest never seen);
    a new digest (``registry.record.duplicate``: the replay defence inside the window).
    """
    manifest = Manifest.from_dict(data)
    if manifest.media_type not in {m.value for m in MediaType}:
        raise ManifestError("manifest.media_type.unsupported", f"media type {manifest.media_type!r} is not supported")
    canonical = manifest.canonical_bytes()
    with db.session_scope(engine) as session:
        db.lock_log(session)  # serialises with other appends, so the duplicate check cannot race
        signer = session.get(Signer, signer_id)
        if signer is None or signer.revocation is not None:
            raise RegistryError("registry.signer.revoked", "the signer this key is bound to is revoked")
        if manifest.key_id != signer.key_id:
            raise RegistryError("registry.manifest.key_mismatch", f"the manifest is not signed by {signer.name!r}")
        public_key = PublicKey.from_spki(signer.public_key)
        public_key.verify(MANIFEST_CONTEXT, canonical, signature)
        logged_at = datetime.now(UTC)
        age = logged_at - parse_timestamp(manifest.signed_at)
        if age > max_age:
            raise RegistryError(
                "registry.manifest.stale", f"signed_at is more than {int(max_age.total_seconds())} s old"
            )
        if -age > max_skew:
            raise RegistryError("registry.manifest.future", "signed_at lies in the future (check the device clock)")
        registration = append_record(
            session, signer=signer, manifest=manifest, manifest_bytes=canonical, signature=signature,
            log_key=log_key, logged_at=logged_at,
        )  # fmt: skip
    return registration, registration.sidecar(manifest, canonical, signature, public_key)
