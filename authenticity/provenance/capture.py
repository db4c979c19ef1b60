"""Signing at capture: the use case behind ``authenticity sign`` and :func:`sign_file`.

Order of work is chosen so that a failure leaves nothing behind: every check that can
fail on user input (media, signer, key, passphrase, duplicate) runs before the one
transaction that registers the record and appends it to the log; the sidecar is
written after the commit, atomically.

>>> # result = sign_file(Path("photo.jpg"), signer="newsroom-cam-1", passphrase=b"...")
>>> # result.record_id, result.sidecar
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from authenticity.config import Settings
from authenticity.errors import KeyStoreError, MediaError, RegistryError, UsageError
from authenticity.media import inspect_media, read_capture_metadata, sha256_file
from authenticity.media.inspect import MediaInfo
from authenticity.media.pdq import pdq_file, pdq_image
from authenticity.provenance.keys import SigningKey
from authenticity.provenance.keystore import ensure_log_key, load_signer_key
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, PerceptualEntry, format_timestamp
from authenticity.provenance.registration import append_record
from authenticity.provenance.sidecar import sidecar_path
from authenticity.registry import db, repository
from authenticity.registry.store import open_registry

__all__ = ["SignResult", "Signer", "parse_claims", "sign_file"]


@dataclass(frozen=True)
class SignResult:
    """What signing one file produced."""

    path: Path
    record_id: int
    content_digest: str
    leaf_index: int
    tree_size: int
    sidecar: Path
    perceptual: int = 0  # PDQ hashes signed into the manifest (0: nothing decodable to hash)


def parse_claims(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → dict; raises ``usage.claim.invalid`` on a pair without ``=``.

    >>> parse_claims(["author=Ana", "event=march"])
    {'author': 'Ana', 'event': 'march'}
    """
    claims: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError("usage.claim.invalid", f"claim {pair!r} is not key=value")
        claims[key.strip()] = value
    return claims


class Signer:
    """A loaded signer (registry row + decrypted key) that signs many files in one process.

    Loading checks that the key on disk is the key the registry knows and that the
    signer is not revoked, so a batch fails before its first file, not halfway.
    """

    def __init__(self, settings: Settings, name: str, passphrase: bytes | None) -> None:
        self.settings = settings
        self.name = name
        self.engine = open_registry(settings)
        with db.session_scope(self.engine) as session:
            row = repository.get_signer(session, name)
            if row.revocation is not None:
                raise RegistryError("registry.signer.revoked", f"signer {name!r} is revoked: {row.revocation.reason}")
            registered_key_id = row.key_id
        self.key: SigningKey = load_signer_key(settings, name, passphrase)
        if self.key.key_id != registered_key_id:
            raise KeyStoreError("key.mismatch", f"the key file for {name!r} is not the registered key")
        self.log_key = ensure_log_key(settings)

    def sign(
        self,
        path: Path,
        *,
        claims: Mapping[str, str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> SignResult:
        """Sign one file, register it, append it to the log and write its sidecar."""
        info = inspect_media(path, max_pixels=self.settings.max_pixels, keep_pixels=True)
        side = sidecar_path(path)
        if not os.access(path.parent, os.W_OK):
            raise UsageError("usage.sidecar.unwritable", f"{path.parent}: cannot write the sidecar here")
        digest = sha256_file(path, progress=progress)
        capture = read_capture_metadata(path, info.media_type).to_dict()
        perceptual = _perceptual_entries(info, self.settings.max_pixels)
        now = datetime.now(UTC)
        manifest = Manifest(
            content_digest=digest,
            media_type=info.media_type.value,
            size_bytes=info.size_bytes,
            algorithm=self.key.algorithm,
            key_id=self.key.key_id,
            signed_at=format_timestamp(now),
            capture=capture,
            claims=dict(claims or {}),
            perceptual=perceptual,
        )
        manifest_bytes = manifest.canonical_bytes()
        signature = self.key.sign(MANIFEST_CONTEXT, manifest_bytes)
        with db.session_scope(self.engine) as session:
            db.lock_log(session)
            signer_row = repository.get_signer(session, self.name)
            if signer_row.revocation is not None:
                raise RegistryError("registry.signer.revoked", f"signer {self.name!r} is revoked")
            reg = append_record(
                session, signer=signer_row, manifest=manifest, manifest_bytes=manifest_bytes, signature=signature,
                log_key=self.log_key, logged_at=datetime.now(UTC),
            )  # fmt: skip
        reg.sidecar(manifest, manifest_bytes, signature, self.key.public_key).write(side)
        return SignResult(path, reg.record_id, digest, reg.leaf_index, reg.head.tree_size, side, len(perceptual))


def _perceptual_entries(info: MediaInfo, max_pixels: int) -> tuple[PerceptualEntry, ...]:
    """PDQ of the image (or of sampled video frames) to sign, so re-encoded copies can be recognised.

    A video whose container is valid but whose frames don't decode is still signed (by exact
    hash only): near-match is an extra, and refusing to sign would lose the original's provenance.
    """
    try:
        hashes = [pdq_image(info.pixels)] if info.pixels is not None else pdq_file(info.path, max_pixels=max_pixels)
    except MediaError:
        return ()
    return tuple(PerceptualEntry(hash=h.hex, quality=h.quality) for h in hashes)


def sign_file(
    path: Path | str,
    *,
    signer: str,
    passphrase: bytes | str | None = None,
    claims: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> SignResult:
    """Sign one original at capture (the Python API for camera and newsroom apps).

    The passphrase defaults to ``AUTHENTICITY_KEY_PASSPHRASE``. For many files, build
    one :class:`Signer` and call :meth:`Signer.sign` on each (the key is decrypted once).
    """
    settings = settings or Settings()
    if passphrase is None and settings.key_passphrase is not None:
        passphrase = settings.key_passphrase.get_secret_value()
    if isinstance(passphrase, str):
        passphrase = passphrase.encode()
    return Signer(settings, signer, passphrase).sign(Path(path), claims=claims)
