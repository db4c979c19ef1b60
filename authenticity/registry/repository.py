"""Repository functions: take a session, never commit (the caller owns the transaction).

>>> # with session_scope(engine) as s: add_signer(s, "newsroom-cam-1", key.public_key, now)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from authenticity.errors import RegistryError, UsageError
from authenticity.provenance.keys import PublicKey
from authenticity.provenance.manifest import PerceptualEntry
from authenticity.registry.models import PerceptualHash, Record, Revocation, Signer

__all__ = [
    "add_perceptual_hashes",
    "add_record",
    "add_signer",
    "find_record_by_digest",
    "find_signer",
    "get_record",
    "get_signer",
    "get_signer_by_key_id",
    "list_signers",
    "perceptual_rows",
    "revoke_signer",
    "validate_signer_name",
]

# Names become file names (keys/NAME.key): a strict alphabet rules out path traversal.
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def validate_signer_name(name: str) -> str:
    """Return *name* if it is a valid signer name, else raise ``usage.signer_name.invalid``.

    >>> validate_signer_name("cam-1")
    'cam-1'
    """
    if not _NAME_RE.match(name) or ".." in name:
        raise UsageError(
            "usage.signer_name.invalid",
            f"invalid signer name {name!r}: use 1-64 of a-z 0-9 . _ - starting with a letter or digit",
        )
    return name


def add_signer(session: Session, name: str, public_key: PublicKey, now: datetime) -> Signer:
    """Register a public key under a unique name."""
    validate_signer_name(name)
    if find_signer(session, name) is not None:
        raise RegistryError("registry.signer.exists", f"a signer named {name!r} already exists")
    if get_signer_by_key_id(session, public_key.key_id) is not None:
        raise RegistryError("registry.signer.key_exists", "this public key is already registered")
    signer = Signer(name=name, key_id=public_key.key_id, algorithm=public_key.algorithm.value,
                    public_key=public_key.spki_der, created_at=now)  # fmt: skip
    session.add(signer)
    session.flush()
    return signer


def find_signer(session: Session, name: str) -> Signer | None:
    """The signer called *name*, if any."""
    return session.scalars(select(Signer).where(Signer.name == name)).unique().first()


def get_signer(session: Session, name: str) -> Signer:
    """The signer called *name*, or ``registry.signer.not_found``."""
    signer = find_signer(session, name)
    if signer is None:
        raise RegistryError("registry.signer.not_found", f"no signer named {name!r}")
    return signer


def get_signer_by_key_id(session: Session, key_id: str) -> Signer | None:
    """The signer with this key id, if registered."""
    return session.scalars(select(Signer).where(Signer.key_id == key_id)).unique().first()


def list_signers(session: Session) -> Sequence[Signer]:
    """All signers by name."""
    return session.scalars(select(Signer).order_by(Signer.name)).unique().all()


def revoke_signer(
    session: Session, name: str, reason: str, now: datetime, compromised_at: datetime | None = None
) -> Revocation:
    """Revoke a signer. Records logged before ``compromised_at`` (default: now) stay valid."""
    signer = get_signer(session, name)
    if signer.revocation is not None:
        raise RegistryError("registry.signer.already_revoked", f"signer {name!r} is already revoked")
    if not reason.strip():
        raise UsageError("usage.reason.required", "a revocation needs a non-empty --reason")
    if compromised_at is not None and compromised_at > now:
        raise UsageError("usage.compromised_at.future", "--compromised-at lies in the future")
    revocation = Revocation(signer_id=signer.id, revoked_at=now, compromised_at=compromised_at, reason=reason)
    session.add(revocation)
    session.flush()
    session.refresh(signer)
    return revocation


def find_record_by_digest(session: Session, content_digest: str) -> Record | None:
    """The record registered for exactly these bytes, if any."""
    return session.scalars(select(Record).where(Record.content_digest == content_digest)).unique().first()


def get_record(session: Session, record_id: int) -> Record:
    """A record by id, or ``registry.record.not_found``."""
    record = session.get(Record, record_id)
    if record is None:
        raise RegistryError("registry.record.not_found", f"no record with id {record_id}")
    return record


def add_record(
    session: Session,
    *,
    signer: Signer,
    content_digest: str,
    media_type: str,
    size_bytes: int,
    manifest: bytes,
    signature: bytes,
    logged_at: datetime,
) -> Record:
    """Insert a record; a digest that is already registered raises ``registry.record.duplicate``."""
    existing = find_record_by_digest(session, content_digest)
    if existing is not None:
        raise RegistryError(
            "registry.record.duplicate", f"{content_digest} is already registered as record {existing.id}"
        )
    record = Record(content_digest=content_digest, signer_id=signer.id, media_type=media_type,
                    size_bytes=size_bytes, manifest=manifest, signature=signature,
                    logged_at=logged_at)  # fmt: skip
    session.add(record)
    session.flush()
    return record


def add_perceptual_hashes(session: Session, record: Record, entries: Sequence[PerceptualEntry]) -> None:
    """Copy a record's signed perceptual hashes into rows (same transaction as the record)."""
    session.add_all(
        PerceptualHash(
            record_id=record.id, frame_index=i, algorithm=e.algorithm, hash=bytes.fromhex(e.hash), quality=e.quality
        )
        for i, e in enumerate(entries)
    )
    session.flush()


def perceptual_rows(
    session: Session, *, after_id: int = 0, batch: int = 10_000
) -> Iterator[tuple[int, int, bytes, int]]:
    """Rows ``(id, record_id, hash, quality)`` with ``id > after_id``, streamed in batches.

    The near-match index loads all of them once (10^6 rows) and later only what is new.
    """
    stmt = (
        select(PerceptualHash.id, PerceptualHash.record_id, PerceptualHash.hash, PerceptualHash.quality)
        .where(PerceptualHash.id > after_id)
        .order_by(PerceptualHash.id)
        .execution_options(yield_per=batch)
    )
    for row_id, record_id, digest, quality in session.execute(stmt):
        yield int(row_id), int(record_id), bytes(digest), int(quality)
