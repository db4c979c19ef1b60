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
from datetime import datetime, timedelta
from pathlib import Path
from typing import NewType

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from authenticity.errors import KeyStoreError, VerificationError

__all__ = [
    "Algorithm",
    "CertificateInfo",
    "KeyId",
    "PublicKey",
    "SigningKey",
    "ca_certificate",
    "generate_signing_key",
    "load_certificates",
    "load_private_key",
    "save_private_key",
    "signing_certificate",
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
        return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


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

    def sign_cose(self, data: bytes) -> bytes:
        """Sign *data* as COSE (RFC 9053) wants it: Ed25519 as is, ES256 as fixed-size ``r || s``.

        No context is prepended: C2PA signs a COSE ``Sig_structure``, which starts with
        its own context string (``"Signature1"``, CBOR-encoded as ``0x84 0x6A ...``), so it
        cannot collide with our ``context || message`` statements. COSE carries ES256 as
        ``r || s`` and c2pa-rs's verifier rejects DER there; the SDK happens to convert a
        DER callback result too, but we do not rely on that.

        >>> len(generate_signing_key(Algorithm.ECDSA_P256).sign_cose(b"x"))
        64
        """
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

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


# --------------------------------------------------------------------------- X.509 for C2PA

# A C2PA signing certificate needs an EKU that c2pa-rs accepts (its valid_eku_oids.cfg:
# emailProtection is always accepted, documentSigning by default) and must not mix them
# with timeStamping/OCSPSigning.
_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")


@dataclass(frozen=True)
class CertificateInfo:
    """The parts of an X.509 certificate the CA and the C2PA reader report.

    >>> key, day = generate_signing_key(Algorithm.ECDSA_P256), timedelta(days=1)
    >>> pem = ca_certificate(key, common_name="Root", organization="Test", now=datetime.now(), valid_for=day)
    >>> load_certificates(pem)[0].is_ca
    True
    """

    subject: str  # RFC 4514, e.g. "CN=cam-1,O=newsroom"
    issuer: str
    common_name: str | None
    organization: str | None
    serial: int
    fingerprint_sha256: str  # hex of sha256(DER)
    not_before: datetime
    not_after: datetime
    is_ca: bool
    spki_der: bytes
    der: bytes

    def pem(self) -> bytes:
        """PEM text of the certificate."""
        return x509.load_der_x509_certificate(self.der).public_bytes(serialization.Encoding.PEM)


def load_certificates(pem: bytes) -> tuple[CertificateInfo, ...]:
    """Parse every certificate in a PEM bundle, in order; ``provenance.certificate.malformed`` if none parse."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise VerificationError("provenance.certificate.malformed", "not a PEM certificate bundle") from exc
    return tuple(_info(c) for c in certs)


def _info(cert: x509.Certificate) -> CertificateInfo:
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    der = cert.public_bytes(serialization.Encoding.DER)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=_attribute(cert.subject, NameOID.COMMON_NAME),
        organization=_attribute(cert.subject, NameOID.ORGANIZATION_NAME),
        serial=cert.serial_number,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca,
        spki_der=spki,
        der=der,
    )


def _attribute(name: x509.Name, oid: ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[-1].value) if values else None


def _name(common_name: str, organization: str) -> x509.Name:
    # O is not optional for C2PA: c2pa-rs reports the signer by the certificate's
    # organization and fails verification when there is none.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _sign_certificate(builder: x509.CertificateBuilder, issuer: SigningKey) -> bytes:
    # Ed25519 certificates carry no digest algorithm (RFC 8410); ECDSA uses SHA-256.
    digest = None if isinstance(issuer._key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer._key, digest).public_bytes(serialization.Encoding.PEM)


def ca_certificate(
    key: SigningKey, *, common_name: str, organization: str, now: datetime, valid_for: timedelta
) -> bytes:
    """A self-signed root CA certificate (PEM) that may issue end-entity certificates only.

    ``pathlen=0``: this root signs signer certificates directly, never a sub-CA.
    """
    name = _name(common_name, organization)
    pub = key._key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pub), critical=False)
    )
    return _sign_certificate(builder, key)


def signing_certificate(
    ca_key: SigningKey,
    ca_cert_pem: bytes,
    subject_key: PublicKey,
    *,
    common_name: str,
    organization: str,
    now: datetime,
    valid_for: timedelta,
) -> bytes:
    """An end-entity certificate (PEM) for *subject_key*, issued by the CA, fit for C2PA claim signing.

    Profile (c2pa-rs ``certificate_profile.rs``): v3, not a CA, keyUsage digitalSignature
    (critical) and nothing that signs certificates, EKU emailProtection + documentSigning,
    authority and subject key identifiers, validity inside the CA's.
    """
    ca = x509.load_pem_x509_certificate(ca_cert_pem)
    pub = serialization.load_der_public_key(subject_key.spki_der)
    if not isinstance(
        pub, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
    ):  # pragma: no cover - PublicKey refuses
        raise VerificationError("provenance.key.unsupported", "unsupported key type")
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organization))
        .issuer_name(ca.subject)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + valid_for, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, _DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    return _sign_certificate(builder, ca_key)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
