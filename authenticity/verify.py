"""The one place where evidence is combined into a :class:`Verdict`.

Today the verdict rests on the provenance channel alone (exact hash, sidecar, registry,
transparency log); this module deliberately imports nothing from the detector, so
verification works without torch installed.

States, most severe first (the first that applies wins):

============  ==============================================================================
tampered      a sidecar or record exists but signature, content digest, key or log disagree
revoked       the signer was revoked with a cut-off at or before this record was logged
unknown       no registered record and no valid sidecar for these bytes
authentic     registered, signature valid, signer trusted, included under the signed tree head
============  ==============================================================================

>>> # verdict = verify_file(Path("photo.jpg"))
>>> # verdict.state, verdict.codes
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from authenticity.config import Settings
from authenticity.errors import AuthenticityError, VerificationError
from authenticity.media import inspect_media, sha256_file
from authenticity.provenance.keys import PublicKey
from authenticity.provenance.keystore import trusted_log_key_ids
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, format_timestamp, parse_timestamp
from authenticity.provenance.sidecar import Sidecar, read_sidecar
from authenticity.registry import db, log, merkle, repository
from authenticity.registry.models import Record
from authenticity.registry.store import open_registry

__all__ = ["Verdict", "VerdictState", "Verifier", "verify_file"]


class VerdictState(enum.StrEnum):
    AUTHENTIC = "authentic"
    REVOKED = "revoked"
    UNKNOWN = "unknown"
    TAMPERED = "tampered"


_SEVERITY = [VerdictState.TAMPERED, VerdictState.REVOKED, VerdictState.UNKNOWN, VerdictState.AUTHENTIC]


@dataclass(frozen=True)
class Verdict:
    """The answer for one file: a state, every status code met, and the evidence."""

    path: str
    state: VerdictState
    codes: tuple[str, ...]
    content_digest: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "state": self.state.value,
            "codes": list(self.codes),
            "content_digest": self.content_digest,
            "evidence": self.evidence,
        }


class _Findings:
    """Collects codes and the states they imply while checks run."""

    def __init__(self) -> None:
        self.codes: list[str] = []
        self.states: set[VerdictState] = set()
        self.evidence: dict[str, Any] = {}

    def ok(self, code: str) -> None:
        self.codes.append(code)

    def bad(self, code: str, state: VerdictState = VerdictState.TAMPERED) -> None:
        self.codes.append(code)
        self.states.add(state)

    def state(self) -> VerdictState:
        return next((s for s in _SEVERITY if s in self.states), VerdictState.AUTHENTIC)


class Verifier:
    """Verifies many files against one registry (engine opened once)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.engine = open_registry(self.settings)
        self.trusted_log_keys = trusted_log_key_ids(self.settings)

    def verify(self, path: Path) -> Verdict:
        """Verify one file. Raises :class:`AuthenticityError` only when it cannot evaluate."""
        inspect_media(path, max_pixels=self.settings.max_pixels)
        sidecar = read_sidecar(path)
        digest = sha256_file(path)
        found = _Findings()
        with db.session_scope(self.engine, read_only=True) as session:
            record = repository.find_record_by_digest(session, digest)
            check = _Check(session, self.trusted_log_keys, found)
            if sidecar is not None:
                found.ok("provenance.sidecar.present")
                check.sidecar(sidecar, digest)
            if record is not None:
                found.ok("registry.record.found")
                check.record(record)
                if sidecar is not None and sidecar.manifest_bytes != record.manifest:
                    found.bad("provenance.sidecar.record_mismatch")
            elif sidecar is not None and "log.consistency.verified" in found.codes:
                # The log proves it once held this record, yet the registry no longer does.
                found.bad("registry.record.missing")
            elif sidecar is None or sidecar.manifest.content_digest == digest:
                found.bad("registry.record.not_found", VerdictState.UNKNOWN)
        return Verdict(str(path), found.state(), tuple(found.codes), digest, found.evidence)


class _Check:
    """The individual checks of one verification, recording into one :class:`_Findings`."""

    def __init__(self, session: Session, trusted_log_keys: frozenset[str], found: _Findings) -> None:
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
                found.bad("registry.signer.revoked", VerdictState.REVOKED)
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
        found.evidence["log"] = {"leaf_index": proof.leaf_index, "tree_head": head.to_dict()}

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
            found.bad("registry.signer.unknown", VerdictState.UNKNOWN)
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


def verify_file(path: Path | str, *, settings: Settings | None = None) -> Verdict:
    """Verify one file by exact hash (and its sidecar when present).

    >>> # verify_file("photo.jpg").state
    """
    return Verifier(settings).verify(Path(path))
