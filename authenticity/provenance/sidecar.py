"""The sidecar ``FILE.authenticity.json``: everything needed to check a file offline.

It carries the manifest, the signature, the signer's public key, and the log's
inclusion proof under a signed tree head. Nothing in it is trusted on its own: the
verifier recomputes the content digest, checks that the key id is the hash of the
enclosed key, and asks the registry whether that key is a registered signer.

>>> sidecar_path(Path("photo.jpg"))
PosixPath('photo.jpg.authenticity.json')
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authenticity._files import write_atomically
from authenticity.errors import ManifestError, MediaError, VerificationError
from authenticity.provenance.keys import PublicKey
from authenticity.provenance.manifest import Manifest, parse_timestamp
from authenticity.registry.log import InclusionProof, SignedTreeHead

__all__ = ["SIDECAR_FORMAT", "SIDECAR_SUFFIX", "SIDECAR_VERSION", "Sidecar", "read_sidecar", "sidecar_path"]

SIDECAR_FORMAT = "authenticity.sidecar"
SIDECAR_VERSION = 1
SIDECAR_SUFFIX = ".authenticity.json"
_MAX_SIDECAR_BYTES = 1 << 20


def sidecar_path(media: Path) -> Path:
    """Where the sidecar of *media* lives."""
    return media.with_name(media.name + SIDECAR_SUFFIX)


@dataclass(frozen=True)
class Sidecar:
    """A parsed sidecar. ``manifest_bytes`` are the canonical bytes that were signed."""

    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes
    public_key: PublicKey
    record_id: int
    logged_at: str
    proof: InclusionProof
    tree_head: SignedTreeHead

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "manifest": self.manifest.to_dict(),
            "signature": base64.b64encode(self.signature).decode(),
            "public_key": base64.b64encode(self.public_key.spki_der).decode(),
            "record_id": self.record_id,
            "logged_at": self.logged_at,
            "inclusion_proof": self.proof.to_dict(),
            "tree_head": self.tree_head.to_dict(),
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    def write(self, path: Path) -> None:
        """Write atomically (temporary file + rename), so a reader never sees half a sidecar."""
        write_atomically(path, self.to_json().encode("utf-8"))

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str = "sidecar") -> Sidecar:
        """Parse and validate structure; cryptographic checks happen in the verifier."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError("sidecar.malformed", f"{where}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
            raise ManifestError("sidecar.malformed", f"{where}: not an authenticity sidecar")
        version = data.get("version")
        if version != SIDECAR_VERSION:
            raise ManifestError(
                "sidecar.version.unsupported",
                f"{where}: sidecar version {version!r} is not supported (this build reads {SIDECAR_VERSION})",
            )
        try:
            manifest = Manifest.from_dict(data.get("manifest"))
        except ManifestError as exc:
            raise ManifestError(exc.code, f"{where}: {exc.message}") from exc
        record_id = data.get("record_id")
        if not isinstance(record_id, int) or isinstance(record_id, bool):
            raise ManifestError("sidecar.malformed", f"{where}: record_id missing")
        logged_at = data.get("logged_at")
        if not isinstance(logged_at, str):
            raise ManifestError("sidecar.malformed", f"{where}: logged_at missing")
        parse_timestamp(logged_at)
        try:
            sig = base64.b64decode(str(data.get("signature")), validate=True)
            spki = base64.b64decode(str(data.get("public_key")), validate=True)
        except ValueError as exc:
            raise ManifestError("sidecar.malformed", f"{where}: signature or public key is not base64") from exc
        return cls(
            manifest=manifest,
            manifest_bytes=manifest.canonical_bytes(),
            signature=sig,
            public_key=_public_key(spki, where),
            record_id=record_id,
            logged_at=logged_at,
            proof=InclusionProof.from_dict(data.get("inclusion_proof")),
            tree_head=SignedTreeHead.from_dict(data.get("tree_head")),
        )


def _public_key(spki: bytes, where: str) -> PublicKey:
    try:
        return PublicKey.from_spki(spki)
    except VerificationError as exc:
        raise ManifestError("sidecar.malformed", f"{where}: public key is not a supported DER key") from exc


def read_sidecar(media: Path) -> Sidecar | None:
    """The sidecar next to *media*, or None when there is none."""
    path = sidecar_path(media)
    if not path.exists():
        return None
    if path.stat().st_size > _MAX_SIDECAR_BYTES:
        raise ManifestError("sidecar.malformed", f"{path}: larger than {_MAX_SIDECAR_BYTES} bytes")
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise MediaError("media.file.unreadable", f"{path}: {exc.strerror}") from exc
    return Sidecar.from_json(text, where=str(path))
