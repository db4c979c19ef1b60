"""The one place where both channels are combined into a :class:`Verdict`.

Provenance (exact hash + sidecar + registry + transparency log, C2PA Content Credentials,
perceptual near-match to a registered original) outranks the detector: the detector only
speaks when no provenance applies. The decision itself is the pure function :func:`decide`;
``docs/verdicts.md`` has its table, and ``tests/test_verdicts.py`` covers every row.

States (the first row that applies wins):

=====================  ==========================================================================
tampered               a sidecar, record or C2PA manifest is present but the content or log disagrees
revoked                the exact registered original, but its signer was revoked before it was logged
declared-synthetic     an intact C2PA manifest declares the content AI-generated
authentic              the exact registered original, or intact C2PA credentials under a trust anchor
authentic-derivative   a perceptual near-copy (re-encoded, resized) of a registered original
likely-synthetic       no provenance; the detector scores at or above its threshold
uncertain              no provenance; the detector scores inside its uncertain band
unverified             no provenance; the detector scores below the band, was not run, or failed
=====================  ==========================================================================

A provenance verdict with a detector that says ``synthetic`` is a *conflict*: the state stays,
the code ``verdict.conflict`` is added and ``Verdict.audit`` is set, so a reviewer looks at it.

This module imports nothing from the detector at import time, so ``--no-detector``
verification works without torch installed.

>>> decide(Outcome.NONE, None, False, "synthetic")[0].value
'likely-synthetic'
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from authenticity.config import Settings
from authenticity.errors import AuthenticityError, ConfigError, MediaError
from authenticity.media import inspect_media, sha256_file
from authenticity.media.inspect import MediaInfo
from authenticity.media.pdq import pdq_file, pdq_image
from authenticity.provenance.c2pa_read import C2paReport, C2paState, read_c2pa
from authenticity.provenance.ca import default_trust_anchors, load_root
from authenticity.provenance.checks import Findings, Outcome, ProvenanceCheck
from authenticity.provenance.keystore import trusted_log_key_ids
from authenticity.provenance.nearmatch import NearMatch, PerceptualIndex, find_near_matches
from authenticity.provenance.sidecar import read_sidecar
from authenticity.registry import db, repository
from authenticity.registry.models import Record
from authenticity.registry.store import open_registry

if TYPE_CHECKING:
    from authenticity.detection.scoring import DetectionResult, Detector

__all__ = ["AUDIT_STATES", "TRUSTED_STATES", "Detection", "Verdict", "VerdictState", "Verifier", "decide",
           "verify_file"]  # fmt: skip


class VerdictState(enum.StrEnum):
    TAMPERED = "tampered"
    REVOKED = "revoked"
    DECLARED_SYNTHETIC = "declared-synthetic"
    AUTHENTIC = "authentic"
    AUTHENTIC_DERIVATIVE = "authentic-derivative"
    LIKELY_SYNTHETIC = "likely-synthetic"
    UNCERTAIN = "uncertain"
    UNVERIFIED = "unverified"


TRUSTED_STATES = frozenset({VerdictState.AUTHENTIC, VerdictState.AUTHENTIC_DERIVATIVE})
AUDIT_STATES = frozenset({VerdictState.TAMPERED, VerdictState.DECLARED_SYNTHETIC, VerdictState.LIKELY_SYNTHETIC})


@dataclass(frozen=True)
class Detection:
    """The detector's evidence for one file (a trimmed :class:`DetectionResult`)."""

    score: float | None
    label: str | None
    model: dict[str, str]
    tiles: tuple[dict[str, float], ...] = ()
    frames: tuple[dict[str, float], ...] | None = None
    error: str | None = None
    enlargement: float | None = None  # scored with undo_enlargement: the enlargement undone (1.0: none)

    @classmethod
    def from_result(cls, result: DetectionResult) -> Detection:
        data = result.to_dict()
        return cls(
            score=result.score,
            label=result.label.value if result.label is not None else None,
            model=dict(result.model),
            tiles=tuple({"y": t.y, "x": t.x, "size": t.size, "score": round(t.score, 6)} for t in result.tiles),
            frames=tuple(data["frames"]) if data.get("frames") is not None else None,
            error=result.error["code"] if result.error else None,
            enlargement=data.get("enlargement"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"score": self.score, "label": self.label, "model": self.model}
        if self.tiles:
            out["tiles"] = list(self.tiles)
        if self.frames is not None:
            out["frames"] = list(self.frames)
        if self.enlargement is not None:
            out["enlargement"] = self.enlargement
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Verdict:
    """The answer for one file: a state, every status code met, and the evidence behind it."""

    path: str
    state: VerdictState
    codes: tuple[str, ...]
    content_digest: str
    evidence: dict[str, Any] = field(default_factory=dict)  # record, revocation, log (provenance checks)
    c2pa: C2paReport | None = None
    near_matches: tuple[NearMatch, ...] = ()
    detection: Detection | None = None
    conflict: bool = False

    @property
    def trusted(self) -> bool:
        """Provenance vouches for this content (exactly or as a near-copy)."""
        return self.state in TRUSTED_STATES

    @property
    def audit(self) -> bool:
        """A reviewer should look: a bad state, or provenance and detector disagree."""
        return self.conflict or self.state in AUDIT_STATES

    def to_dict(self) -> dict[str, Any]:
        evidence = dict(self.evidence)
        evidence["c2pa"] = self.c2pa.to_dict() if self.c2pa is not None else None
        evidence["near_matches"] = [m.to_dict() for m in self.near_matches]
        evidence["detector"] = self.detection.to_dict() if self.detection is not None else None
        return {
            "path": self.path,
            "state": self.state.value,
            "codes": list(self.codes),
            "content_digest": self.content_digest,
            "conflict": self.conflict,
            "audit": self.audit,
            "evidence": evidence,
        }


def decide(
    provenance: Outcome, c2pa: C2paReport | None, near_match: bool, detector_label: str | None
) -> tuple[VerdictState, tuple[str, ...]]:
    """The decision table (pure): channel outcomes → state and the verdict-level codes it adds.

    ``detector_label`` is ``synthetic``, ``uncertain``, ``authentic-looking`` or None (not run / failed).
    """
    c2pa_intact = c2pa is not None and c2pa.state in (C2paState.VALID, C2paState.UNTRUSTED)
    if provenance is Outcome.TAMPERED or (c2pa is not None and c2pa.state is C2paState.INVALID):
        state = VerdictState.TAMPERED
    elif provenance is Outcome.REVOKED:
        state = VerdictState.REVOKED
    elif c2pa_intact and c2pa is not None and c2pa.declared_synthetic:
        state = VerdictState.DECLARED_SYNTHETIC
    elif provenance is Outcome.AUTHENTIC or (c2pa is not None and c2pa.state is C2paState.VALID):
        state = VerdictState.AUTHENTIC
    elif near_match:
        state = VerdictState.AUTHENTIC_DERIVATIVE
    elif detector_label == "synthetic":
        state = VerdictState.LIKELY_SYNTHETIC
    elif detector_label == "uncertain":
        state = VerdictState.UNCERTAIN
    else:
        state = VerdictState.UNVERIFIED
    if state in TRUSTED_STATES and detector_label == "synthetic":
        return state, ("verdict.conflict",)
    return state, ()


class Verifier:
    """Verifies many files against one registry: engine, near-match index and detector loaded once.

    ``detector``: True loads the shipped model on first use, False never runs it
    (provenance only), or pass a loaded :class:`~authenticity.detection.scoring.Detector`.
    """

    def __init__(self, settings: Settings | None = None, *, detector: bool | Detector = True) -> None:
        self.settings = settings or Settings()
        self.engine = open_registry(self.settings)
        self.trusted_log_keys: frozenset[str] = frozenset()
        self.trust_anchors: bytes | None = None
        self.index = PerceptualIndex()
        self._detector: Detector | None = None if isinstance(detector, bool) else detector
        self.use_detector = detector is not False
        if self.use_detector and self._detector is None:
            self._detector = _load_detector()

    def verify(self, path: Path) -> Verdict:
        """Verify one file. Raises :class:`AuthenticityError` only when it cannot evaluate."""
        info = inspect_media(path, max_pixels=self.settings.max_pixels, keep_pixels=True)
        sidecar = read_sidecar(path)
        digest = sha256_file(path)
        # Read per call (two small files): a long-lived verifier, such as the HTTP service's, must trust
        # a log key or CA created after it started.
        self.trusted_log_keys = trusted_log_key_ids(self.settings)
        self.trust_anchors = default_trust_anchors(self.settings, self.settings.c2pa_trust_anchors)
        found = Findings()
        c2pa = self._c2pa(path, found)
        near: list[NearMatch] = []
        with db.session_scope(self.engine, read_only=True) as session:
            record = repository.find_record_by_digest(session, digest)
            check = ProvenanceCheck(session, self.trusted_log_keys, found)
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
                found.bad("registry.record.not_found", Outcome.NONE)
            if c2pa is not None and self._c2pa_signer_revoked(session, c2pa, found):
                found.bad("c2pa.signer.revoked", Outcome.REVOKED)
            outcome = found.state()
            if outcome is Outcome.NONE:
                near = self._near_matches(session, info, found)
        codes = list(found.codes)
        detection = self._detect(path, codes)
        state, verdict_codes = decide(outcome, c2pa, bool(near), detection.label if detection else None)
        codes.extend(verdict_codes)
        return Verdict(str(path), state, tuple(codes), digest, found.evidence, c2pa, tuple(near), detection,
                       conflict="verdict.conflict" in verdict_codes)  # fmt: skip

    def _c2pa(self, path: Path, found: Findings) -> C2paReport | None:
        """Embedded Content Credentials, if any. A manifest we cannot read is reported, not fatal:
        it proves nothing either way (stripping a manifest is always possible), so the other
        channels decide."""
        try:
            report = read_c2pa(path, trust_anchors_pem=self.trust_anchors)
        except AuthenticityError as exc:
            found.ok(f"c2pa.unreadable.{exc.code}")
            return None
        if report is None:
            found.ok("c2pa.absent")
            return None
        found.ok(f"c2pa.{report.state.value}")
        for code in report.codes:
            found.ok(code)
        return report

    def _c2pa_signer_revoked(self, session: Any, report: C2paReport, found: Findings) -> bool:
        """A C2PA manifest signed under *our* CA by a signer the registry has revoked.

        The certificate travels inside every file its key signs and our manifests carry no
        trusted time (no TSA), so a stolen key could keep minting "valid" credentials: any
        manifest from a revoked signer counts as revoked, whatever time it claims.
        """
        signer = report.signer
        if report.state is C2paState.INVALID or signer is None or not signer.common_name:
            return False
        try:
            root = load_root(self.settings)
        except ConfigError:
            return False  # no CA of ours: nothing we issued can be in this file
        if signer.issuer != root.cert.subject:
            return False
        row = repository.find_signer(session, signer.common_name)
        if row is None:
            found.ok("c2pa.signer.unregistered")
            return False
        return row.revocation is not None

    def _near_matches(self, session: Any, info: MediaInfo, found: Findings) -> list[NearMatch]:
        kind = "video" if info.media_type.is_video else "image"
        try:
            # An image was decoded once already, by the inspection above; only videos are read again.
            hashes = (
                [pdq_image(info.pixels)]
                if info.pixels is not None
                else pdq_file(info.path, max_pixels=self.settings.max_pixels)
            )
        except MediaError as exc:
            found.ok(f"nearmatch.skipped.{exc.code}")
            return []
        self.index.refresh(session)

        def accept(original: Record) -> bool:
            probe = Findings()
            ProvenanceCheck(session, self.trusted_log_keys, probe).record(original)
            return probe.state() is Outcome.AUTHENTIC

        matches = find_near_matches(session, self.index, hashes, kind, accept)
        found.ok("nearmatch.found" if matches else "nearmatch.none")
        return matches

    def _detect(self, path: Path, codes: list[str]) -> Detection | None:
        if self._detector is None:
            codes.append("detector.skipped")
            return None
        detection = Detection.from_result(self._detector.score_path(path))
        if detection.error:
            codes.append(f"detector.error.{detection.error}")
        else:
            codes.append(f"detector.{detection.label}")
        return detection


def _load_detector() -> Detector:
    try:
        from authenticity.detection.scoring import Detector
    except ImportError as exc:
        raise ConfigError(
            "detector.unavailable",
            f"the detector needs the 'detect' extra ({exc.name or exc} is not installed)",
            hint="install authenticity[detect], or verify by provenance only with --no-detector",
        ) from exc
    return Detector.load()


def verify_file(path: Path | str, *, settings: Settings | None = None, detector: bool = True) -> Verdict:
    """Verify one file: provenance first, then the detector when no provenance applies.

    >>> # verify_file("upload.jpg").state
    """
    return Verifier(settings, detector=detector).verify(Path(path))
