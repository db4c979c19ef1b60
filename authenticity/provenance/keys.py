"""Keys and signatures: the only module that imports ``cryptography.hazmat``.

Everything else calls these small functions with safe defaults (Ed25519). A key id is
the SHA-256 of the DER SubjectPublicKeyInfo, in hex, so it names the key itself and
not a database row.

Signatures are made over ``context || message`` where *context* is a fixed
domain-separation string per kind of statement (manifest, tree head): a signature over a
manifest can never be replayed as a tree-head signature or vice versa.

>>> key = generate_signing_key()
>>> sig = key.sign(b"ctx\\x00", b"hello")
>>> key.public_key.verify(b"ctx\\x00", b"hello", sig)
"""

from __future__ import annotations

import enum
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NewType

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from authenticity.errors import KeyStoreError, VerificationError

__all__ = [
    "Algorithm",
    "KeyId",
    "PublicKey",
    "SigningKey",
    "generate_signing_key",
    "load_private_key",
    "save_private_key",
]

KeyId = NewType("KeyId", str)

_PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
_PublicKeyT = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


class Algorithm(enum.StrEnum):
    """Signature algorithms we accept. Ed25519 is the default."""

    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"


@dataclass(frozen=True)
class PublicKey:
    """A public key with its algorithm and id.

    >>> k = generate_signing_key().public_key
    >>> PublicKey.from_spki(k.spki_der) == k
    True
    """

    algorithm: Algorithm
    spki_der: bytes

    @property
    def key_id(self) -> KeyId:
        """sha256 of the SubjectPublicKeyInfo (hex)."""
        return KeyId(hashlib.sha256(self.spki_der).hexdigest())

    @classmethod
    def from_spki(cls, spki_der: bytes) -> PublicKey:
        """Parse a DER SubjectPublicKeyInfo; refuse algorithms we do not support."""
        try:
            key = serialization.load_der_public_key(spki_der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise VerificationError("provenance.key.malformed", "public key is not valid DER SPKI") from exc
        return cls(algorithm=_algorithm_of(key), spki_der=spki_der)

    def verify(self, context: bytes, message: bytes, signature: bytes) -> None:
        """Raise :class:`VerificationError` unless *signature* is valid; never returns a bool."""
        key = serialization.load_der_public_key(self.spki_der)
        data = context + message
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            else:  # pragma: no cover - from_spki refuses other types
                raise VerificationError("provenance.key.unsupported", "unsupported key type")
        except InvalidSignature as exc:
            raise VerificationError("provenance.signature.invalid", "signature does not verify") from exc

    def pem(self) -> str:
        """PEM text of the public key, for export."""
        key = serialization.load_der_public_key(self.spki_der)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


class SigningKey:
    """A private key that can sign; it never leaves this object except encrypted."""

    def __init__(self, key: _PrivateKey) -> None:
        self._key = key
        pub = key.public_key()
        spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key = PublicKey(algorithm=_algorithm_of(pub), spki_der=spki)

    @property
    def algorithm(self) -> Algorithm:
        return self.public_key.algorithm

    @property
    def key_id(self) -> KeyId:
        return self.public_key.key_id

    def sign(self, context: bytes, message: bytes) -> bytes:
        """Sign ``context || message``."""
        data = context + message
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def private_pem(self, passphrase: bytes | None) -> bytes:
        """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
        encryption: serialization.KeySerializationEncryption
        encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _algorithm_of(key: object) -> Algorithm:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return Algorithm.ED25519
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return Algorithm.ECDSA_P256
    raise VerificationError("provenance.key.unsupported", f"unsupported key type {type(key).__name__}")


def generate_signing_key(algorithm: Algorithm = Algorithm.ED25519) -> SigningKey:
    """A fresh key pair.

    >>> generate_signing_key(Algorithm.ECDSA_P256).algorithm
    <Algorithm.ECDSA_P256: 'ecdsa-p256'>
    """
    if algorithm is Algorithm.ED25519:
        return SigningKey(ed25519.Ed25519PrivateKey.generate())
    return SigningKey(ec.generate_private_key(ec.SECP256R1()))


def save_private_key(key: SigningKey, path: Path, passphrase: bytes | None) -> None:
    """Write the key as PKCS#8 PEM with mode 0600, refusing to overwrite an existing file.

    The file is created with ``O_EXCL`` and its mode set at creation, so there is no
    moment when another user could read it.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = key.private_pem(passphrase)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyStoreError("key.file.exists", f"{path}: a key file already exists") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def load_private_key(path: Path, passphrase: bytes | None) -> SigningKey:
    """Read a PKCS#8 PEM key; a wrong or missing passphrase raises ``key.passphrase.wrong``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyStoreError("key.file.not_found", f"{path}: private key file not found") from exc
    except OSError as exc:
        raise KeyStoreError("key.file.unreadable", f"{path}: {exc.strerror}") from exc
    encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except TypeError as exc:
        raise KeyStoreError("key.passphrase.required", f"{path}: key is encrypted; a passphrase is needed") from exc
    except ValueError as exc:
        if encrypted:
            raise KeyStoreError("key.passphrase.wrong", f"{path}: wrong passphrase") from exc
        raise KeyStoreError("key.file.malformed", f"{path}: not a PKCS#8 private key") from exc
    except UnsupportedAlgorithm as exc:
        raise KeyStoreError("key.file.malformed", f"{path}: unsupported key algorithm") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyStoreError("key.file.malformed", f"{path}: unsupported key type")
    return SigningKey(key)
