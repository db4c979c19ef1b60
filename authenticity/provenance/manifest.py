"""The signed statement about one original: versioned, canonical, strict on input.

A manifest says "the signer with key *key_id* vouches for content *content_digest*
(of type *media_type*, *size_bytes* long) at *signed_at*", plus capture metadata and
caller claims. Its canonical bytes are RFC 8785 (JSON Canonicalization Scheme), so the
same manifest always serialises to the same bytes on every platform; the signature is
made over ``MANIFEST_CONTEXT || canonical_bytes``.

>>> m = Manifest(content_digest="sha256:" + "0" * 64, media_type="image/jpeg", size_bytes=3,
...              algorithm=Algorithm.ED25519, key_id="ab" * 32,
...              signed_at="2026-01-01T00:00:00.000000Z")
>>> Manifest.from_dict(m.to_dict()) == m
True
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785

from authenticity.errors import ManifestError
from authenticity.provenance.keys import Algorithm

__all__ = [
    "MANIFEST_CONTEXT",
    "MANIFEST_VERSION",
    "MAX_PERCEPTUAL",
    "Manifest",
    "PerceptualEntry",
    "format_timestamp",
    "parse_timestamp",
]

MANIFEST_VERSION = 1
MANIFEST_CONTEXT = b"authenticity.manifest.v1\x00"

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_KEY_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_FIELDS = {
    "version", "content_digest", "media_type", "size_bytes", "algorithm",
    "key_id", "signed_at", "capture", "claims", "perceptual",
}  # fmt: skip
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_SAFE_INTEGER = 2**53 - 1  # RFC 8785 serialises numbers as IEEE doubles: larger integers cannot be signed
MAX_PERCEPTUAL = 1000  # frames of one video; bounds what a hostile sidecar can make us parse


@dataclass(frozen=True)
class PerceptualEntry:
    """One signed perceptual hash (PDQ, 256 bits as 64 hex) of the image or of one video frame.

    Signed inside the manifest so that a near-match names an original *the signer* vouched
    for: a row slipped into the registry's hash table by its operator cannot create one.
    """

    hash: str
    quality: int
    algorithm: str = "pdq"

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "hash": self.hash, "quality": self.quality}

    @classmethod
    def from_dict(cls, data: object) -> PerceptualEntry:
        if not isinstance(data, dict) or set(data) != {"algorithm", "hash", "quality"}:
            raise ManifestError("manifest.malformed", "perceptual entries are {algorithm, hash, quality}")
        algorithm, digest, quality = data["algorithm"], data["hash"], data["quality"]
        if algorithm != "pdq":
            raise ManifestError("manifest.malformed", f"perceptual algorithm {algorithm!r} is not supported")
        if not isinstance(digest, str) or not _HASH_RE.match(digest):
            raise ManifestError("manifest.malformed", "perceptual hash is not 64 lowercase hex characters")
        if not isinstance(quality, int) or isinstance(quality, bool) or not 0 <= quality <= 100:
            raise ManifestError("manifest.malformed", "perceptual quality is not an integer in 0..100")
        return cls(hash=digest, quality=quality, algorithm=algorithm)


def format_timestamp(moment: datetime) -> str:
    """UTC, microseconds, ``Z`` suffix: one spelling per instant.

    >>> format_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    '2026-01-02T03:04:05.000000Z'
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; raises ``manifest.malformed`` on other spellings."""
    if not isinstance(text, str) or not _TS_RE.match(text):
        raise ManifestError("manifest.malformed", f"timestamp {text!r} is not UTC ISO 8601 with microseconds")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Manifest:
    """What a signer vouches for. Build with keyword arguments; serialise with :meth:`canonical_bytes`."""

    content_digest: str
    media_type: str
    size_bytes: int
    algorithm: Algorithm
    key_id: str
    signed_at: str
    capture: dict[str, str | int] = field(default_factory=dict)
    claims: dict[str, str] = field(default_factory=dict)
    perceptual: tuple[PerceptualEntry, ...] = ()
    version: int = MANIFEST_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``perceptual`` only when present, so older manifests keep their bytes)."""
        out = {
            "version": self.version,
            "content_digest": self.content_digest,
            "media_type": self.media_type,
            "size_bytes": self.size_bytes,
            "algorithm": self.algorithm.value,
            "key_id": self.key_id,
            "signed_at": self.signed_at,
            "capture": dict(self.capture),
            "claims": dict(self.claims),
        }
        if self.perceptual:
            out["perceptual"] = [entry.to_dict() for entry in self.perceptual]
        return out

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON: the exact bytes that are signed and logged."""
        return rfc8785.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: object) -> Manifest:
        """Validate and build; unknown versions and unknown fields are rejected."""
        if not isinstance(data, dict):
            raise ManifestError("manifest.malformed", "manifest is not a JSON object")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ManifestError("manifest.malformed", "manifest has no integer version")
        if version != MANIFEST_VERSION:
            raise ManifestError(
                "manifest.version.unsupported",
                f"manifest version {version} is not supported (this build reads version {MANIFEST_VERSION})",
            )
        extra = set(data) - _FIELDS
        if extra:
            raise ManifestError("manifest.malformed", f"unknown manifest fields: {', '.join(sorted(extra))}")
        try:
            algorithm = Algorithm(data["algorithm"])
        except (KeyError, ValueError) as exc:
            raise ManifestError("manifest.malformed", "manifest algorithm missing or unknown") from exc
        digest, key_id = data.get("content_digest"), data.get("key_id")
        if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
            raise ManifestError("manifest.malformed", "content_digest is not sha256:<64 hex>")
        if not isinstance(key_id, str) or not _KEY_ID_RE.match(key_id):
            raise ManifestError("manifest.malformed", "key_id is not 64 hex characters")
        size, media_type = data.get("size_bytes"), data.get("media_type")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SAFE_INTEGER:
            raise ManifestError("manifest.malformed", "size_bytes is not an integer in 0..2^53-1")
        if not isinstance(media_type, str) or "/" not in media_type:
            raise ManifestError("manifest.malformed", "media_type is not a MIME type")
        signed_at = data.get("signed_at")
        parse_timestamp(signed_at)  # type: ignore[arg-type]
        capture, claims = data.get("capture", {}), data.get("claims", {})
        if not isinstance(capture, dict) or not all(
            isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_SAFE_INTEGER)
            for v in capture.values()
        ):
            raise ManifestError("manifest.malformed", "capture must map names to strings or integers")
        if not isinstance(claims, dict) or not all(isinstance(v, str) for v in claims.values()):
            raise ManifestError("manifest.malformed", "claims must map names to strings")
        perceptual = data.get("perceptual", [])
        # Absent means "none"; present must be non-empty, so one manifest has one spelling.
        present_but_bad = "perceptual" in data and not (isinstance(perceptual, list) and perceptual)
        if present_but_bad or len(perceptual) > MAX_PERCEPTUAL:
            raise ManifestError("manifest.malformed", f"perceptual must be a list of 1..{MAX_PERCEPTUAL} entries")
        if media_type.startswith("image/") and len(perceptual) > 1:
            # One picture, one hash: more would let one image record vouch for unrelated pictures.
            raise ManifestError("manifest.malformed", "an image manifest carries at most one perceptual hash")
        return cls(
            content_digest=digest,
            media_type=media_type,
            size_bytes=size,
            algorithm=algorithm,
            key_id=key_id,
            signed_at=str(signed_at),
            capture=dict(capture),
            claims=dict(claims),
            perceptual=tuple(PerceptualEntry.from_dict(entry) for entry in perceptual),
            version=version,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse JSON text; malformed JSON raises ``manifest.malformed``."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError("manifest.malformed", f"manifest is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
