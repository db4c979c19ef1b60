"""The provenance checks of one verification: sidecar, registry record, log inclusion and consistency.

Each check records status codes into a :class:`Findings`; "evaluated as bad" is data here,
only "could not evaluate" raises. :mod:`authenticity.verify` turns the findings into a verdict.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy.orm import Session

from authenticity.errors import AuthenticityError, VerificationError
from authenticity.provenance.keys import PublicKey
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, format_timestamp, parse_timestamp
from authenticity.provenance.sidecar import Sidecar
from authenticity.registry import log, merkle, repository
from authenticity.registry.models import Record

__all__ = ["Findings", "Outcome", "ProvenanceCheck"]


class Outcome(enum.StrEnum):
    """What the exact-hash provenance channel concluded, most severe first."""

    TAMPERED = "tampered"
    REVOKED = "revoked"
    NONE = "none"  # nothing registered or signed for these bytes
    AUTHENTIC = "authentic"


_SEVERITY = [Outcome.TAMPERED, Outcome.REVOKED, Outcome.NONE, Outcome.AUTHENTIC]


class Findings:
    """Collects codes and the states they imply while checks run."""

    def __init__(self) -> None:
        self.codes: list[str] = []
        self.states: set[Outcome] = set()
        self.evidence: dict[str, Any] = {}

    def ok(self, code: str) -> None:
        self.codes.append(code)

    def bad(self, code: str, state: Outcome = Outcome.TAMPERED) -> None:
        self.codes.append(code)
        self.states.add(state)

    def state(self) -> Outcome:
        return next((s for s in _SEVERITY if s in self.states), Outcome.AUTHENTIC)


class ProvenanceCheck:
    """The individual checks of one verification, recording into one :class:`Findings`."""

    def __init__(self, session: Session, trusted_log_keys: frozenset[str], found: Findings) -> None:
        self.session = session
        self.trusted = trusted_log_keys
        self.found = found

    def signature(self, key: PublicKey, manifest_bytes: bytes, signature: bytes, prefix: str) -> bool:
        try:
            key.verify(MANIFEST_CONTEXT, manifest_bytes, signature)
        except VerificationError:
            self.found.bad(f"{prefix}.signature.invalid")
            return False
        self.found.ok(f"{prefix}.signature.valid")
        return True

    def head(self, head: log.SignedTreeHead) -> bool:
        """A tree head counts only if signed by a log key trusted from outside the database."""
        if head.key_id not in self.trusted:
            self.found.bad("log.key.untrusted")
            return False
        try:
            head.verify(log.log_public_key(self.session, head.key_id))
        except AuthenticityError as exc:
            self.found.bad(exc.code if exc.code.startswith("log.") else "log.tree_head.signature.invalid")
            return False
        return True

    def record(self, record: Record) -> None:
        found = self.found
        signer = record.signer
        found.evidence["record"] = {
            "id": record.id,
            "signer": signer.name,
            "key_id": signer.key_id,
            "logged_at": format_timestamp(record.logged_at),
            "media_type": record.media_type,
        }
        manifest = Manifest.from_json(record.manifest)
        if manifest.content_digest != record.content_digest or manifest.key_id != signer.key_id:
            found.bad("registry.record.inconsistent")
        self.signature(PublicKey.from_spki(signer.public_key), record.manifest, record.signature, "provenance")
        if signer.revocation is not None:
            if record.logged_at >= signer.revocation.untrusted_from:
                found.bad("registry.signer.revoked", Outcome.REVOKED)
            else:
                found.ok("registry.signer.revoked_later")
            found.evidence["revocation"] = {
                "reason": signer.revocation.reason,
                "untrusted_from": format_timestamp(signer.revocation.untrusted_from),
            }
        else:
            found.ok("registry.signer.trusted")
        leaf = merkle.leaf_hash(log.entry_bytes(record.manifest, record.signature, record.logged_at))
        if record.leaf is None or record.leaf.leaf_hash != leaf:
            found.bad("log.leaf.mismatch")
            return
        head = log.latest_tree_head(self.session)
        if head is None or not self.head(head):
            if head is None:
                found.bad("log.tree_head.missing")
            return
        try:
            proof = log.inclusion_proof(self.session, record.leaf.leaf_index, head.tree_size)
            proof.verify(leaf, head.root_hash)
        except AuthenticityError:
            # A missing node or head is the log contradicting itself: evidence, not an input error.
            found.bad("log.inclusion.invalid")
            return
        found.ok("log.inclusion.verified")
        found.evidence["log"] = {
            "leaf_index": proof.leaf_index,
            "inclusion_proof": proof.to_dict(),
            "tree_head": head.to_dict(),
        }

    def sidecar(self, sidecar: Sidecar, digest: str) -> None:
        found, session = self.found, self.session
        manifest = sidecar.manifest
        if manifest.key_id != sidecar.public_key.key_id:
            found.bad("provenance.sidecar.key_mismatch")
            return
        if not self.signature(sidecar.public_key, sidecar.manifest_bytes, sidecar.signature, "provenance.sidecar"):
            return
        if manifest.content_digest != digest:
            found.bad("provenance.content.mismatch")
            if repository.find_record_by_digest(session, manifest.content_digest) is not None:
                # A genuine sidecar of another registered file, copied next to this one.
                found.ok("provenance.sidecar.replayed")
            return
        if repository.get_signer_by_key_id(session, manifest.key_id) is None:
            found.bad("registry.signer.unknown", Outcome.NONE)
            return
        head = sidecar.tree_head
        if not self.head(head):
            return
        logged_at = parse_timestamp(sidecar.logged_at)
        leaf = merkle.leaf_hash(log.entry_bytes(sidecar.manifest_bytes, sidecar.signature, logged_at))
        try:
            if sidecar.proof.tree_size != head.tree_size:
                raise VerificationError("log.proof.inclusion.invalid", "proof and tree head sizes differ")
            sidecar.proof.verify(leaf, head.root_hash)
        except VerificationError:
            found.bad("provenance.sidecar.inclusion.invalid")
            return
        current = log.latest_tree_head(session)
        try:
            if current is None or current.tree_size < head.tree_size:
                raise VerificationError("log.proof.consistency.invalid", "the log is shorter than the sidecar's head")
            proof = log.consistency_proof(session, head.tree_size, current.tree_size)
            merkle.verify_consistency(head.tree_size, current.tree_size, proof, head.root_hash, current.root_hash)
        except AuthenticityError:
            # The log now disagrees with a head it signed earlier: a forked or rewritten log.
            found.bad("log.consistency.invalid")
            return
        found.ok("log.consistency.verified")
