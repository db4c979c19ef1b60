"""Perceptual near-match of a file to registered originals (re-encoded, resized, lightly edited copies).

The index holds the PDQ hashes copied from every record's signed manifest. A hit in the
index is only a candidate: it counts once the original's record verifies (signature, signer
not revoked, log inclusion) and the hash it matched is one the *signer signed* — so rows
slipped into ``perceptual_hash`` cannot make an unrelated file look like an original.

Images match image originals at PDQ distance <= 31; videos match video originals by the
vPDQ-style rule in :func:`authenticity.media.pdq.video_match`. Hashes of quality < 50
(flat or tiny content, where PDQ says little) are neither indexed nor queried.

>>> # index = PerceptualIndex(); index.refresh(session)
>>> # matches = find_near_matches(session, index, pdq_file(path, max_pixels=10**8), "image", accept)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from authenticity.media.pdq import MATCH_DISTANCE, MIN_QUALITY, PdqHash, video_match
from authenticity.provenance.manifest import Manifest
from authenticity.registry import repository
from authenticity.registry.models import Record
from authenticity.registry.nearmatch import NearMatchIndex

__all__ = ["MAX_CANDIDATES", "NearMatch", "PerceptualIndex", "find_near_matches"]

MAX_CANDIDATES = 16  # originals verified per query: each costs a signature check and a log proof


@dataclass(frozen=True)
class NearMatch:
    """A registered original this file is a perceptual near-copy of."""

    record_id: int
    content_digest: str
    signer: str
    media_type: str
    distance: int  # best PDQ distance between a query hash and a signed hash of the original
    query_fraction: float | None = None  # videos: share of the query's frames matched
    original_fraction: float | None = None  # videos: share of the original's frames matched

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "record_id": self.record_id,
            "content_digest": self.content_digest,
            "signer": self.signer,
            "media_type": self.media_type,
            "distance": self.distance,
        }
        if self.query_fraction is not None:
            out["query_fraction"] = round(self.query_fraction, 4)
            out["original_fraction"] = round(self.original_fraction or 0.0, 4)
        return out


class PerceptualIndex:
    """The near-match index over the registry's perceptual hashes, kept current incrementally."""

    def __init__(self) -> None:
        self.index = NearMatchIndex()
        self.last_row_id = 0

    def __len__(self) -> int:
        return len(self.index)

    def refresh(self, session: Session, *, batch: int = 50_000) -> int:
        """Add rows registered since the last refresh; returns how many were indexed."""
        added = 0
        ids: list[int] = []
        hashes: list[bytes] = []

        def flush() -> None:
            if ids:
                self.index.add_many(np.array(ids, np.int64), np.frombuffer(b"".join(hashes), np.uint8).reshape(-1, 32))
                ids.clear()
                hashes.clear()

        for row_id, record_id, digest, quality in repository.perceptual_rows(session, after_id=self.last_row_id):
            self.last_row_id = row_id
            if quality >= MIN_QUALITY and len(digest) == 32:
                ids.append(record_id)
                hashes.append(digest)
                added += 1
                if len(ids) >= batch:
                    flush()
        flush()
        return added


def _signed_hashes(record: Record) -> list[PdqHash]:
    manifest = Manifest.from_json(record.manifest)
    return [PdqHash.from_hex(e.hash, e.quality) for e in manifest.perceptual if e.algorithm == "pdq"]


def find_near_matches(
    session: Session,
    index: PerceptualIndex,
    hashes: Sequence[PdqHash],
    kind: str,
    accept: Callable[[Record], bool],
) -> list[NearMatch]:
    """Registered originals of the same kind (``image``/``video``) that ``hashes`` near-match, best first.

    ``accept`` decides whether an original's record verifies (the caller's provenance check).
    """
    usable = [h for h in hashes if h.quality >= MIN_QUALITY]
    if not usable:
        return []
    hits: Counter[int] = Counter()
    for h in usable:
        for match in index.index.query(h, MATCH_DISTANCE):
            hits[match.item_id] += 1
    matches: list[NearMatch] = []
    for record_id, _ in hits.most_common(MAX_CANDIDATES):
        record = session.get(Record, record_id)
        if record is None or not record.media_type.startswith(kind + "/"):
            continue
        signed = [h for h in _signed_hashes(record) if h.quality >= MIN_QUALITY]
        if not signed:
            continue
        best = min(q.distance(s) for q in usable for s in signed)
        if kind == "video":
            rule = video_match(usable, signed)
            if not rule.matched:
                continue
            near = NearMatch(record.id, record.content_digest, record.signer.name, record.media_type, best,
                             rule.query_fraction, rule.original_fraction)  # fmt: skip
        elif best <= MATCH_DISTANCE:
            near = NearMatch(record.id, record.content_digest, record.signer.name, record.media_type, best)
        else:
            continue  # the index row does not agree with what was signed
        if accept(record):
            matches.append(near)
    matches.sort(key=lambda m: (m.distance, m.record_id))
    return matches
