"""``authenticity log check``: recompute the whole log from stored records.

Detects an edited record (its leaf hash or signature no longer matches), a deleted or
reordered leaf (indices not contiguous, or roots that no longer match signed heads),
a tampered interior node, and any tree head that is unsigned, wrongly signed or
inconsistent with the leaves. Runs in O(n) memory for the in-memory rebuild, streaming
rows from the database in batches.

>>> # report = check_log(session); report.ok
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from authenticity.errors import AuthenticityError
from authenticity.provenance.keys import PublicKey
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest
from authenticity.registry import log, merkle
from authenticity.registry.models import LogKey, LogLeaf, LogNode, PerceptualHash, Record, Signer, TreeHead

__all__ = ["LogCheckReport", "LogProblem", "check_log"]

_MAX_PROBLEMS = 100


@dataclass(frozen=True)
class LogProblem:
    code: str
    message: str


@dataclass
class LogCheckReport:
    tree_size: int = 0
    leaves_checked: int = 0
    heads_checked: int = 0
    problems: list[LogProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, message: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(LogProblem(code, message))


def check_log(
    session: Session,
    trusted_log_keys: frozenset[str],
    progress: Callable[[int], None] | None = None,
) -> LogCheckReport:
    """Recompute leaves, nodes and roots; compare with every stored row and signed head.

    *trusted_log_keys* are the key ids allowed to sign tree heads. They come from
    outside the database (the log key file, configuration): a DBA who can write the
    ``log_key`` table must not be able to add a key and re-sign a rewritten history.
    """
    report = LogCheckReport(tree_size=log.tree_size(session))
    signers = {s.id: s for s in session.scalars(select(Signer)).unique()}
    signer_keys = {sid: PublicKey.from_spki(s.public_key) for sid, s in signers.items()}
    tree = merkle.MemoryTree()
    signed_hashes: dict[int, list[tuple[bytes, int]]] = {}
    rows = session.execute(
        select(LogLeaf.leaf_index, LogLeaf.leaf_hash, Record.manifest, Record.signature, Record.logged_at,
               Record.signer_id, Record.id, Record.content_digest, Record.size_bytes, Record.media_type)
        .join(Record, Record.id == LogLeaf.record_id)
        .order_by(LogLeaf.leaf_index)
        .execution_options(yield_per=2000)
    )  # fmt: skip
    for index, stored_leaf, manifest, signature, logged_at, signer_id, record_id, *columns in rows:
        if index != tree.size:
            report.add("log.leaf.gap", f"leaf index {tree.size} is missing (next stored index is {index})")
            break
        leaf = merkle.leaf_hash(log.entry_bytes(manifest, signature, logged_at))
        if leaf != stored_leaf:
            report.add("log.leaf.mismatch", f"record {record_id} at leaf {index} differs from what was logged")
        try:
            signer_keys[signer_id].verify(MANIFEST_CONTEXT, manifest, signature)
        except AuthenticityError:
            report.add("provenance.signature.invalid", f"record {record_id} at leaf {index}: signature invalid")
        if not _columns_match_manifest(manifest, columns, signers[signer_id].key_id):
            report.add("registry.record.inconsistent",
                       f"record {record_id}: digest, size, type or signer differ from its signed manifest")  # fmt: skip
        signed_hashes[record_id] = _signed_perceptual(manifest)
        tree.append_leaf_hash(stored_leaf)
        report.leaves_checked += 1
        if progress:
            progress(1)
    orphans = session.scalar(select(Record.id).where(~Record.id.in_(select(LogLeaf.record_id))).limit(1))
    if orphans is not None:
        report.add("log.record.unlogged", f"record {orphans} has no log leaf")
    if report.leaves_checked != report.tree_size:
        report.add("log.size.mismatch",
                   f"{report.leaves_checked} leaves stored, newest tree head says {report.tree_size}")  # fmt: skip
    _check_nodes(session, tree, report)
    _check_heads(session, tree, report, trusted_log_keys)
    _check_perceptual(session, signed_hashes, report)
    return report


def _signed_perceptual(manifest_bytes: bytes) -> list[tuple[bytes, int]]:
    try:
        return [(bytes.fromhex(e.hash), e.quality) for e in Manifest.from_json(manifest_bytes).perceptual]
    except AuthenticityError:
        return []


def _check_perceptual(session: Session, signed: dict[int, list[tuple[bytes, int]]], report: LogCheckReport) -> None:
    """The near-match index rows must be exactly the hashes each record's signer signed."""
    stored: dict[int, list[tuple[bytes, int]]] = {}
    rows = session.execute(
        select(PerceptualHash.record_id, PerceptualHash.hash, PerceptualHash.quality)
        .order_by(PerceptualHash.record_id, PerceptualHash.frame_index)
        .execution_options(yield_per=5000)
    )
    for record_id, digest, quality in rows:
        stored.setdefault(record_id, []).append((bytes(digest), quality))
    for record_id in sorted(signed):  # records the leaf walk reached (after a gap, other problems speak)
        if stored.get(record_id, []) != signed[record_id]:
            report.add("registry.perceptual.mismatch",
                       f"record {record_id}: perceptual hash rows differ from its signed manifest")  # fmt: skip


def _check_nodes(session: Session, tree: merkle.MemoryTree, report: LogCheckReport) -> None:
    stored = session.execute(select(LogNode.level, LogNode.node_index, LogNode.hash).execution_options(yield_per=5000))
    seen: set[merkle.NodeId] = set()
    for level, index, digest in stored:
        seen.add((level, index))
        expected = tree.nodes.get((level, index))
        if expected != digest:
            report.add("log.node.mismatch", f"stored node ({level}, {index}) does not match the leaves")
    missing = len(set(tree.nodes) - seen)
    if missing:
        report.add("log.node.missing", f"{missing} interior nodes missing")


def _columns_match_manifest(manifest_bytes: bytes, columns: list[object], signer_key_id: str) -> bool:
    try:
        manifest = Manifest.from_json(manifest_bytes)
    except AuthenticityError:
        return False
    digest, size, media_type = columns
    return (manifest.content_digest, manifest.size_bytes, manifest.media_type, manifest.key_id) == (
        digest, size, media_type, signer_key_id,
    )  # fmt: skip


def _check_heads(session: Session, tree: merkle.MemoryTree, report: LogCheckReport, trusted: frozenset[str]) -> None:
    keys: dict[str, PublicKey] = {}
    for key_row in session.scalars(select(LogKey)):
        stored_key = PublicKey.from_spki(key_row.public_key)
        if stored_key.key_id != key_row.key_id:
            report.add("log.key.mismatch", f"log_key row {key_row.key_id[:16]}… holds a different key")
        elif key_row.key_id in trusted:
            keys[key_row.key_id] = stored_key
    expected_size = 1
    for row in session.scalars(select(TreeHead).order_by(TreeHead.tree_size).execution_options(yield_per=2000)):
        head = log.SignedTreeHead.from_row(row)
        if head.tree_size != expected_size:
            report.add("log.tree_head.gap", f"tree head for size {expected_size} is missing")
        expected_size = head.tree_size + 1
        key = keys.get(head.key_id)
        if key is None:
            report.add("log.key.untrusted", f"tree head {head.tree_size} signed by a key that is not a trusted log key")
        else:
            try:
                head.verify(key)
            except AuthenticityError:
                report.add("log.tree_head.signature.invalid", f"tree head {head.tree_size}: bad signature")
        if head.tree_size <= tree.size and tree.root(head.tree_size) != head.root_hash:
            report.add("log.tree_head.inconsistent", f"tree head {head.tree_size}: root does not match the leaves")
        report.heads_checked += 1
