"""The transparency log over the registry: append, signed tree heads, proofs.

Storage is the set of *perfect* subtree hashes (``log_node``), so an append writes
O(log n) nodes and reads O(log n), and a proof reads O(log n) nodes in one query —
the tree is never rebuilt. A tree head is signed by the log's own key after every
append, inside the same transaction as the record it covers.

Functions take a session and never commit (the caller owns the transaction).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from authenticity.errors import ManifestError, RegistryError, VerificationError
from authenticity.provenance.keys import PublicKey, SigningKey
from authenticity.provenance.manifest import format_timestamp, parse_timestamp
from authenticity.registry import merkle
from authenticity.registry.models import LogKey, LogLeaf, LogNode, TreeHead

__all__ = [
    "TREE_HEAD_CONTEXT",
    "InclusionProof",
    "SignedTreeHead",
    "append_leaf",
    "consistency_proof",
    "entry_bytes",
    "inclusion_proof",
    "latest_tree_head",
    "log_public_key",
    "tree_head_at",
    "tree_size",
]

TREE_HEAD_CONTEXT = b"authenticity.treehead.v1\x00"
_ENTRY_TYPE = "authenticity.log.entry"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ManifestError("sidecar.malformed", f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ManifestError("sidecar.malformed", f"{what} is not valid base64") from exc


def entry_bytes(manifest: bytes, signature: bytes, logged_at: datetime) -> bytes:
    """The bytes a log leaf commits to: manifest, signature and the log's own timestamp.

    ``logged_at`` is inside the leaf because revocation cut-offs compare against it:
    editing it in the database (to slip a record before a compromise time) changes
    the leaf hash, which ``log check`` detects.
    """
    return rfc8785.dumps(
        {
            "type": _ENTRY_TYPE,
            "manifest": _b64(manifest),
            "signature": _b64(signature),
            "logged_at": format_timestamp(logged_at),
        }
    )


@dataclass(frozen=True)
class SignedTreeHead:
    """(size, root) signed by the log key at a time."""

    tree_size: int
    root_hash: bytes
    signed_at: str
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        """Canonical bytes that the signature covers."""
        return rfc8785.dumps(
            {
                "tree_size": self.tree_size,
                "root_hash": _b64(self.root_hash),
                "signed_at": self.signed_at,
                "key_id": self.key_id,
            }
        )

    def verify(self, key: PublicKey) -> None:
        """Raise :class:`VerificationError` (``log.tree_head.signature.invalid``) if not signed by *key*."""
        if key.key_id != self.key_id:
            raise VerificationError("log.tree_head.key.mismatch", "tree head names another log key")
        try:
            key.verify(TREE_HEAD_CONTEXT, self.signed_bytes(), self.signature)
        except VerificationError as exc:
            raise VerificationError("log.tree_head.signature.invalid", "tree head signature does not verify") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": _b64(self.root_hash),
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signature": _b64(self.signature),
        }

    @classmethod
    def from_dict(cls, data: object) -> SignedTreeHead:
        if not isinstance(data, dict):
            raise ManifestError("sidecar.malformed", "tree head is not an object")
        size, key_id, signed_at = data.get("tree_size"), data.get("key_id"), data.get("signed_at")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(key_id, str):
            raise ManifestError("sidecar.malformed", "tree head fields missing or of the wrong type")
        if not isinstance(signed_at, str):
            raise ManifestError("sidecar.malformed", "tree head signed_at missing")
        parse_timestamp(signed_at)
        return cls(size, _unb64(data.get("root_hash"), "root_hash"), signed_at, key_id,
                   _unb64(data.get("signature"), "tree head signature"))  # fmt: skip

    @classmethod
    def from_row(cls, row: TreeHead) -> SignedTreeHead:
        return cls(row.tree_size, row.root_hash, format_timestamp(row.signed_at), row.key_id, row.signature)


@dataclass(frozen=True)
class InclusionProof:
    """Audit path for one leaf in a tree of ``tree_size`` leaves."""

    leaf_index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def verify(self, leaf_hash: bytes, root: bytes) -> None:
        """Raise ``log.proof.inclusion.invalid`` unless the path leads to *root*."""
        merkle.verify_inclusion(leaf_hash, self.leaf_index, self.tree_size, list(self.hashes), root)

    def to_dict(self) -> dict[str, Any]:
        return {"leaf_index": self.leaf_index, "tree_size": self.tree_size, "hashes": [_b64(h) for h in self.hashes]}

    @classmethod
    def from_dict(cls, data: object) -> InclusionProof:
        if not isinstance(data, dict):
            raise ManifestError("sidecar.malformed", "inclusion proof is not an object")
        index, size, hashes = data.get("leaf_index"), data.get("tree_size"), data.get("hashes")
        if not (isinstance(index, int) and isinstance(size, int) and isinstance(hashes, list)):
            raise ManifestError("sidecar.malformed", "inclusion proof fields missing or of the wrong type")
        return cls(index, size, tuple(_unb64(h, "proof hash") for h in hashes))


def _fetch_nodes(session: Session, ids: Iterable[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
    wanted = list(dict.fromkeys(ids))
    by_level: dict[int, list[int]] = {}
    for level, index in wanted:
        by_level.setdefault(level, []).append(index)
    found: dict[merkle.NodeId, bytes] = {}
    if by_level:
        # One query, one primary-key range per level. (SQLite does not use the primary key
        # for a row-value ``(level, node_index) IN (...)`` and would scan the whole table.)
        condition = or_(*(and_(LogNode.level == level, LogNode.node_index.in_(indices))
                          for level, indices in by_level.items()))  # fmt: skip
        rows = session.execute(select(LogNode.level, LogNode.node_index, LogNode.hash).where(condition))
        for level, index, digest in rows:
            found[(level, index)] = digest
    missing = [n for n in wanted if n not in found]
    if missing:
        raise RegistryError("log.node.missing", f"log node {missing[0]} is missing: run `authenticity log check`")
    return found


def tree_size(session: Session) -> int:
    """Number of leaves in the log (the size of the newest tree head)."""
    return int(session.scalar(select(func.coalesce(func.max(TreeHead.tree_size), 0))) or 0)


def latest_tree_head(session: Session) -> SignedTreeHead | None:
    """The newest signed tree head, or None for an empty log."""
    row = session.scalars(select(TreeHead).order_by(TreeHead.tree_size.desc()).limit(1)).first()
    return SignedTreeHead.from_row(row) if row else None


def tree_head_at(session: Session, size: int) -> SignedTreeHead:
    """The signed head for exactly *size* leaves."""
    row = session.get(TreeHead, size)
    if row is None:
        raise RegistryError("log.tree_head.not_found", f"no signed tree head for size {size}")
    return SignedTreeHead.from_row(row)


def log_public_key(session: Session, key_id: str) -> PublicKey:
    """A public key the log has used, by id."""
    row = session.get(LogKey, key_id)
    if row is None:
        raise RegistryError("log.key.unknown", f"tree head signed by unknown log key {key_id[:16]}…")
    key = PublicKey.from_spki(row.public_key)
    if key.key_id != key_id:
        raise RegistryError("log.key.mismatch", f"stored log key {key_id[:16]}… is a different key")
    return key


def _ensure_log_key_row(session: Session, key: SigningKey, now: datetime) -> None:
    if session.get(LogKey, key.key_id) is None:
        session.add(LogKey(key_id=key.key_id, algorithm=key.algorithm.value,
                           public_key=key.public_key.spki_der, created_at=now))  # fmt: skip
        session.flush()


def append_leaf(
    session: Session, record_id: int, entry: bytes, log_key: SigningKey, now: datetime
) -> tuple[int, SignedTreeHead]:
    """Append one entry and sign the new tree head. Caller must hold :func:`db.lock_log`.

    Returns the leaf index and the new signed tree head.
    """
    _ensure_log_key_row(session, log_key, now)
    size = tree_size(session)
    leaf = merkle.leaf_hash(entry)
    deps = _fetch_nodes(session, merkle.append_dependencies(size))
    new_nodes = merkle.compute_append(size, leaf, deps.__getitem__)
    session.add(LogLeaf(leaf_index=size, record_id=record_id, leaf_hash=leaf))
    session.add_all(LogNode(level=lvl, node_index=idx, hash=h) for (lvl, idx), h in new_nodes)
    session.flush()
    stored = dict(new_nodes)
    new_size = size + 1
    ranges = [(0, new_size)]
    needed = [n for n in merkle.required_nodes(ranges) if n not in stored]
    stored.update(_fetch_nodes(session, needed))
    root = merkle.proof_from_nodes(ranges, stored.__getitem__)[0]
    unsigned = SignedTreeHead(new_size, root, format_timestamp(now), log_key.key_id, b"")
    head = SignedTreeHead(new_size, root, unsigned.signed_at, log_key.key_id,
                          log_key.sign(TREE_HEAD_CONTEXT, unsigned.signed_bytes()))  # fmt: skip
    session.add(TreeHead(tree_size=new_size, root_hash=root, signed_at=now,
                         key_id=log_key.key_id, signature=head.signature))  # fmt: skip
    session.flush()
    return size, head


def _proof(session: Session, ranges: list[tuple[int, int]]) -> list[bytes]:
    nodes = _fetch_nodes(session, merkle.required_nodes(ranges))
    return merkle.proof_from_nodes(ranges, nodes.__getitem__)


def inclusion_proof(session: Session, leaf_index: int, size: int | None = None) -> InclusionProof:
    """Audit path for *leaf_index* in the tree of *size* leaves (default: current size)."""
    current = tree_size(session)
    size = current if size is None else size
    if not 0 <= leaf_index < size <= current:
        raise RegistryError("log.proof.out_of_range", f"leaf {leaf_index} is not in a tree of size {size}")
    return InclusionProof(leaf_index, size, tuple(_proof(session, merkle.inclusion_proof_ranges(leaf_index, size))))


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    """RFC 6962 consistency proof between two tree sizes of this log."""
    current = tree_size(session)
    if not 0 < first <= second <= current:
        raise RegistryError("log.proof.out_of_range", f"sizes {first}..{second} not within 1..{current}")
    return _proof(session, merkle.consistency_proof_ranges(first, second))
