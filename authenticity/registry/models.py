"""SQLAlchemy 2 typed models of the registry.

Tables (singular snake_case, named constraints, timezone-aware ``*_at`` columns):

* ``signer``      — a registered public key; private keys never enter the database.
* ``revocation``  — at most one per signer; ``compromised_at`` bounds which records stay valid.
* ``record``      — one signed original (manifest + signature), unique by content digest.
* ``log_leaf``    — position of a record in the transparency log.
* ``log_node``    — hash of each complete (perfect) subtree, so append and proofs are O(log n).
* ``tree_head``   — a signed (size, root) after every append.
* ``log_key``     — public keys the log has signed tree heads with.
* ``api_key``     — HTTP API credentials (only a SHA-256 of each secret), role admin|signer|reviewer.
* ``flagged_item`` — content that needs a reviewer (one row per content digest, mutable status).
* ``audit_event`` — every flag, report, claim and decision: append-only, hash-chained, each
  chain head signed with the log key (pinned outside the database).
* ``perceptual_hash`` — PDQ hashes (one per image, one per sampled video frame) copied from
  each record's signed manifest into rows, so the near-match index can be loaded in one query.

``record``, ``log_leaf``, ``log_node``, ``tree_head``, ``log_key``, ``perceptual_hash`` and
``audit_event`` are append-only: migrations
install triggers that refuse UPDATE and DELETE (see ``migrations/versions``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NewType

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "FlaggedItem",
    "LogKey",
    "LogLeaf",
    "LogNode",
    "PerceptualHash",
    "Record",
    "RecordId",
    "Revocation",
    "Signer",
    "TreeHead",
    "UTCDateTime",
]

RecordId = NewType("RecordId", int)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Signer(Base):
    __tablename__ = "signer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revocation: Mapped[Revocation | None] = relationship(back_populates="signer", lazy="joined")


class Revocation(Base):
    __tablename__ = "revocation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signer_id: Mapped[int] = mapped_column(ForeignKey("signer.id"), unique=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    compromised_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    signer: Mapped[Signer] = relationship(back_populates="revocation")

    @property
    def untrusted_from(self) -> datetime:
        """Records logged at or after this instant are no longer trusted."""
        return self.compromised_at or self.revoked_at


class Record(Base):
    __tablename__ = "record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_digest: Mapped[str] = mapped_column(String(71), unique=True)
    signer_id: Mapped[int] = mapped_column(ForeignKey("signer.id"), index=True)
    media_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    manifest: Mapped[bytes] = mapped_column(LargeBinary)  # canonical bytes, exactly as signed
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signer: Mapped[Signer] = relationship(lazy="joined")
    leaf: Mapped[LogLeaf] = relationship(back_populates="record", lazy="joined")


class LogLeaf(Base):
    __tablename__ = "log_leaf"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_id: Mapped[int] = mapped_column(ForeignKey("record.id"), unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    record: Mapped[Record] = relationship(back_populates="leaf")


class LogNode(Base):
    __tablename__ = "log_node"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TreeHead(Base):
    __tablename__ = "tree_head"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(ForeignKey("log_key.key_id"))
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class LogKey(Base):
    __tablename__ = "log_key"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PerceptualHash(Base):
    __tablename__ = "perceptual_hash"
    __table_args__ = (UniqueConstraint("record_id", "frame_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("record.id"), index=True)
    frame_index: Mapped[int] = mapped_column(Integer)  # position in the manifest's ``perceptual`` list
    algorithm: Mapped[str] = mapped_column(String(16))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    quality: Mapped[int] = mapped_column(Integer)


class ApiKey(Base):
    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | signer | reviewer
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings; the secret is never stored
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    signer_id: Mapped[int | None] = mapped_column(ForeignKey("signer.id"), nullable=True)  # role signer only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signer: Mapped[Signer | None] = relationship(lazy="joined")


class FlaggedItem(Base):
    __tablename__ = "flagged_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_digest: Mapped[str] = mapped_column(String(71), unique=True)
    media_type: Mapped[str] = mapped_column(String(64))
    media_path: Mapped[str | None] = mapped_column(Text, nullable=True)  # copy kept for reviewers, under home
    reasons: Mapped[str] = mapped_column(Text)  # JSON list, e.g. ["likely-synthetic", "report"]
    verdict: Mapped[str | None] = mapped_column(Text, nullable=True)  # latest Verdict JSON
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # detector P(synthetic), for sorting/filtering
    occurrences: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | claimed | decided
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEvent(Base):
    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("flagged_item.id"), nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # RFC 8785 canonical JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    event_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    key_id: Mapped[str] = mapped_column(String(64))  # the log key that signed this chain head
    signature: Mapped[bytes] = mapped_column(LargeBinary)
