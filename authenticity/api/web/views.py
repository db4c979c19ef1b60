"""What the item page shows, read defensively out of a stored verdict (``Verdict.to_dict()`` as JSON).

The verdict column is data from the database: every field is checked for its type here, so a
missing or odd value shows as absent instead of breaking the page. Templates only print strings.

>>> view = evidence_view({"state": "tampered", "codes": ["c2pa.content.mismatch"], "evidence": {}})
>>> view.state, view.codes, view.detector is None
('tampered', ('c2pa.content.mismatch',), True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DetectorView", "EvidenceView", "NearMatchView", "Row", "detector_enlargement", "detector_scores",
           "event_details", "evidence_view", "figure_kind", "score_text"]  # fmt: skip

Row = tuple[str, str]  # (label, value)
_MAX_ENLARGEMENT = 64.0  # a stored verdict is data: a larger "enlargement" is not one the detector wrote


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _rows(data: Mapping[str, Any], fields: tuple[tuple[str, str], ...]) -> tuple[Row, ...]:
    return tuple((label, _text(data.get(key))) for key, label in fields if data.get(key) not in (None, ""))


def score_text(score: object) -> str:
    """``0.873`` for a finite score, ``–`` otherwise."""
    if isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score):
        return f"{score:.3f}"
    return "–"


@dataclass(frozen=True)
class DetectorView:
    score: str
    label: str
    model: str
    error: str
    tiles: int
    frames: int
    enlargement: str = ""  # "2.00× enlarged: scored shrunk back" where the detector undid one


@dataclass(frozen=True)
class NearMatchView:
    record_id: str
    signer: str
    distance: str
    media_type: str
    content_digest: str
    coverage: str


@dataclass(frozen=True)
class EvidenceView:
    state: str
    conflict: bool
    codes: tuple[str, ...]
    record: tuple[Row, ...] = ()
    revocation: tuple[Row, ...] = ()
    log: tuple[Row, ...] = ()
    c2pa: tuple[Row, ...] = ()
    c2pa_codes: tuple[str, ...] = ()
    near_matches: tuple[NearMatchView, ...] = ()
    detector: DetectorView | None = field(default=None)


def _detector(data: Mapping[str, Any]) -> DetectorView | None:
    if not data:
        return None
    model = _dict(data.get("model"))
    name = " / ".join(_text(model.get(k)) for k in ("name", "arch") if model.get(k))
    factor = _enlargement(data)
    enlarged = f"{factor:.2f}× enlarged: scored shrunk back" if factor > 1.0 else ""
    return DetectorView(score_text(data.get("score")), _text(data.get("label")) or "–", name,
                        _text(data.get("error")), len(_list(data.get("tiles"))),
                        len(_list(data.get("frames"))), enlarged)  # fmt: skip


def _c2pa(data: Mapping[str, Any]) -> tuple[tuple[Row, ...], tuple[str, ...]]:
    if not data:
        return (), ()
    signer = _dict(data.get("signer"))
    rows = [("state", _text(data.get("state")))]
    who = ", ".join(_text(signer.get(k)) for k in ("common_name", "organization") if signer.get(k))
    rows += [(label, value) for label, value in (
        ("signer", who), ("issuer", _text(signer.get("issuer"))), ("algorithm", _text(signer.get("algorithm"))),
        ("time-stamped", _text(signer.get("timestamp"))), ("title", _text(data.get("title"))),
        ("claim generator", _text(data.get("claim_generator"))),
        ("digital source type", _text(data.get("digital_source_type"))),
        ("declared synthetic", _text(data.get("declared_synthetic"))),
        ("actions", ", ".join(_text(_dict(a).get("action")) for a in _list(data.get("actions")))),
    ) if value]  # fmt: skip
    return tuple(rows), tuple(_text(c) for c in _list(data.get("codes")))


def _near(data: Mapping[str, Any]) -> NearMatchView:
    fractions = [data.get("query_fraction"), data.get("original_fraction")]
    numbers = [f for f in fractions if isinstance(f, int | float) and not isinstance(f, bool)]
    coverage = " / ".join(f"{f:.0%}" for f in numbers) if len(numbers) == 2 else ""
    return NearMatchView(_text(data.get("record_id")), _text(data.get("signer")), _text(data.get("distance")),
                         _text(data.get("media_type")), _text(data.get("content_digest")), coverage)  # fmt: skip


def evidence_view(verdict: Mapping[str, Any] | None) -> EvidenceView | None:
    """The verdict as rows to print; None for an item without a verdict (reported, never verified)."""
    if not verdict:
        return None
    evidence = _dict(verdict.get("evidence"))
    log = _dict(evidence.get("log"))
    head = _dict(log.get("tree_head"))
    c2pa_rows, c2pa_codes = _c2pa(_dict(evidence.get("c2pa")))
    return EvidenceView(
        state=_text(verdict.get("state")), conflict=verdict.get("conflict") is True,
        codes=tuple(_text(c) for c in _list(verdict.get("codes"))),
        record=_rows(_dict(evidence.get("record")), (("id", "record"), ("signer", "signer"), ("key_id", "key id"),
                                                     ("logged_at", "logged at"), ("media_type", "media type"))),
        revocation=_rows(_dict(evidence.get("revocation")),
                         (("reason", "reason"), ("untrusted_from", "untrusted from"))),
        log=_rows({"leaf_index": log.get("leaf_index"), **head},
                  (("leaf_index", "leaf index"), ("tree_size", "tree size"), ("root_hash", "root hash"),
                   ("signed_at", "head signed at"), ("key_id", "log key id"))),
        c2pa=c2pa_rows, c2pa_codes=c2pa_codes,
        near_matches=tuple(_near(_dict(m)) for m in _list(evidence.get("near_matches"))),
        detector=_detector(_dict(evidence.get("detector"))),
    )  # fmt: skip


def figure_kind(verdict: Mapping[str, Any] | None, media_type: str) -> str | None:
    """``heatmap`` (an image with tile scores), ``timeline`` (a video with frame scores) or None."""
    tiles, frames, _ = detector_scores(verdict)
    if media_type.startswith("image/") and tiles:
        return "heatmap"
    if frames:
        return "timeline"
    return None


def detector_enlargement(verdict: Mapping[str, Any] | None) -> float:
    """The enlargement the detector undid before scoring (1.0: none, or not recorded).

    >>> detector_enlargement({"evidence": {"detector": {"enlargement": 2.0}}}), detector_enlargement({})
    (2.0, 1.0)
    """
    return _enlargement(_dict(_dict(_dict(verdict).get("evidence")).get("detector")))


def _enlargement(detector: Mapping[str, Any]) -> float:
    value = detector.get("enlargement")
    if isinstance(value, int | float) and not isinstance(value, bool) and 1.0 <= value <= _MAX_ENLARGEMENT:
        return float(value)
    return 1.0


def detector_scores(
    verdict: Mapping[str, Any] | None,
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], float | None]:
    """The detector's tiles, frames (objects only) and overall score out of a stored verdict."""
    detector = _dict(_dict(_dict(verdict).get("evidence")).get("detector"))
    tiles = [t for t in _list(detector.get("tiles")) if isinstance(t, Mapping)]
    frames = [f for f in _list(detector.get("frames")) if isinstance(f, Mapping)]
    score = detector.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score):
        return tiles, frames, float(score)
    return tiles, frames, None


def event_details(payload: Mapping[str, Any]) -> tuple[Row, ...]:
    """An audit event's payload as rows: lists joined, scores rounded, the (already shown) digest left out."""
    rows = []
    for key in sorted(payload):
        value = payload[key]
        if key == "content_digest" or value is None:
            continue
        if isinstance(value, float):
            text = score_text(value)
        elif isinstance(value, list):
            text = ", ".join(_text(v) for v in value)
        else:
            text = _text(value)
        rows.append((key, text))
    return tuple(rows)
