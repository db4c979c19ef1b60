"""The registry's own certificate authority, for C2PA Content Credentials.

C2PA signatures carry an X.509 chain, so a signer's registry key needs a certificate
before it can sign embedded manifests. The CA lives in ``<home>/ca``:

====================  ===================================================================
``root.key``          ECDSA P-256 root key, encrypted PKCS#8 (mode 0600, created O_EXCL)
``root.pem``          self-signed root certificate: the trust anchor verifiers install
``signers/NAME.pem``  a signer's certificate chain (leaf + root), reused while it fits
====================  ===================================================================

ECDSA P-256 for the root because every C2PA validator accepts ``ecdsa-with-SHA256``
certificate signatures (Ed25519 ones are newer in the spec). Leaves are issued for the
signer's existing key, Ed25519 or P-256; the private key never comes here.

Validity is long on purpose: without a time-stamp authority a validator checks the
signing certificate against *today*, so an expired leaf would turn every photo it ever
signed ``invalid``.

>>> # root = init_ca(settings, b"passphrase")
>>> # chain = issue_signer_certificate(settings, "cam-1", key.public_key, b"passphrase")
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from authenticity._files import write_atomically
from authenticity.config import Settings
from authenticity.errors import ConfigError, KeyStoreError, VerificationError
from authenticity.provenance.keys import (
    Algorithm,
    CertificateInfo,
    PublicKey,
    ca_certificate,
    generate_signing_key,
    load_certificates,
    load_private_key,
    save_private_key,
    signing_certificate,
)
from authenticity.registry.repository import validate_signer_name

__all__ = [
    "DEFAULT_ORGANIZATION",
    "LEAF_VALIDITY",
    "RENEW_BEFORE",
    "RootCa",
    "ca_dir",
    "default_trust_anchors",
    "init_ca",
    "issue_signer_certificate",
    "load_root",
    "require_no_ca",
    "signer_certificate_path",
]

DEFAULT_ORGANIZATION = "authenticity registry"
ROOT_VALIDITY = timedelta(days=20 * 365)
LEAF_VALIDITY = timedelta(days=10 * 365)
RENEW_BEFORE = timedelta(days=30)
"""A stored leaf closer than this to its end is re-issued instead of reused."""

_MISSING_HINT = "run: authenticity ca init"


@dataclass(frozen=True)
class RootCa:
    """The root certificate and where its files are."""

    cert: CertificateInfo
    cert_path: Path
    key_path: Path


def ca_dir(settings: Settings) -> Path:
    """``<home>/ca``."""
    return settings.home / "ca"


def _root_paths(settings: Settings) -> tuple[Path, Path]:
    return ca_dir(settings) / "root.pem", ca_dir(settings) / "root.key"


def signer_certificate_path(settings: Settings, name: str) -> Path:
    """``<home>/ca/signers/NAME.pem`` (the name is validated like a registry signer name)."""
    return ca_dir(settings) / "signers" / f"{validate_signer_name(name)}.pem"


def require_no_ca(settings: Settings) -> None:
    """Raise ``ca.exists`` when a root key or certificate is already in place."""
    if any(p.exists() for p in _root_paths(settings)):
        raise KeyStoreError("ca.exists", f"{ca_dir(settings)}: a certificate authority already exists")


def init_ca(
    settings: Settings, passphrase: bytes, *, organization: str = DEFAULT_ORGANIZATION, now: datetime | None = None
) -> RootCa:
    """Create the root key and self-signed certificate; ``ca.exists`` if either file exists.

    Nothing is left behind on failure, and of two concurrent inits exactly one wins:
    the key file is created with ``O_EXCL`` and the certificate hard-linked into place.

    >>> # init_ca(Settings(home=Path("/tmp/h")), b"passphrase").cert.subject
    >>> # 'CN=authenticity registry root CA,O=authenticity registry'
    """
    require_no_ca(settings)
    cert_path, key_path = _root_paths(settings)
    if not passphrase:
        raise KeyStoreError("key.passphrase.empty", "an empty passphrase would leave the CA key unencrypted")
    key = generate_signing_key(Algorithm.ECDSA_P256)
    now = now or datetime.now(UTC)
    pem = ca_certificate(
        key, common_name=f"{organization} root CA", organization=organization, now=now, valid_for=ROOT_VALIDITY
    )
    try:
        save_private_key(key, key_path, passphrase)
    except KeyStoreError as exc:
        if exc.code == "key.file.exists":  # lost a race with another init
            raise KeyStoreError("ca.exists", f"{ca_dir(settings)}: a certificate authority already exists") from exc
        raise
    try:
        _write_file(cert_path, pem, replace=False)
    except BaseException:
        key_path.unlink(missing_ok=True)
        raise
    return load_root(settings)


def load_root(settings: Settings) -> RootCa:
    """The root certificate; ``ca.missing`` when there is no CA yet."""
    cert_path, key_path = _root_paths(settings)
    try:
        pem = cert_path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError("ca.missing", f"{ca_dir(settings)}: no certificate authority", hint=_MISSING_HINT) from exc
    except OSError as exc:
        raise ConfigError("ca.unreadable", f"{cert_path}: {exc.strerror}") from exc
    try:
        (cert,) = load_certificates(pem)
    except (VerificationError, ValueError) as exc:
        raise ConfigError("ca.malformed", f"{cert_path}: not a single PEM certificate") from exc
    return RootCa(cert=cert, cert_path=cert_path, key_path=key_path)


def issue_signer_certificate(
    settings: Settings, signer_name: str, public_key: PublicKey, passphrase: bytes, *, now: datetime | None = None
) -> bytes:
    """PEM chain (leaf + root) certifying *public_key* as *signer_name*, for C2PA signing.

    A stored chain is reused when its leaf is for this key, was issued by the current
    root and is not within :data:`RENEW_BEFORE` of expiring; only then is the root key
    (and so *passphrase*) not needed. Raises ``ca.missing``, ``key.passphrase.wrong``.

    >>> # chain = issue_signer_certificate(settings, "cam-1", key.public_key, b"passphrase")
    """
    now = now or datetime.now(UTC)
    root = load_root(settings)
    path = signer_certificate_path(settings, signer_name)
    stored = _reusable_chain(path, public_key, root, now)
    if stored is not None:
        return stored
    ca_key = load_private_key(root.key_path, passphrase)
    if ca_key.public_key.spki_der != root.cert.spki_der:
        raise ConfigError("ca.key.mismatch", f"{root.key_path}: the CA key does not match {root.cert_path}")
    # The leaf names the root's organisation: the registry vouches for its signers.
    organization = root.cert.organization or DEFAULT_ORGANIZATION
    leaf = signing_certificate(
        ca_key,
        root.cert.pem(),
        public_key,
        common_name=signer_name,
        organization=organization,
        now=now,
        valid_for=LEAF_VALIDITY,
    )
    chain = leaf + root.cert.pem()
    _write_file(path, chain, replace=True)
    return chain


def _reusable_chain(path: Path, public_key: PublicKey, root: RootCa, now: datetime) -> bytes | None:
    try:
        pem = path.read_bytes()
        certs = load_certificates(pem)
    except (OSError, VerificationError, ValueError):
        return None  # missing or damaged: issue a fresh one
    if len(certs) != 2 or certs[1].der != root.cert.der:
        return None
    leaf = certs[0]
    if leaf.spki_der != public_key.spki_der or leaf.not_after - RENEW_BEFORE <= now:
        return None
    return pem


def default_trust_anchors(settings: Settings, extra_pem_file: Path | None = None) -> bytes | None:
    """Trust anchors for :func:`~authenticity.provenance.c2pa_read.read_c2pa`.

    Our own root (when ``ca init`` ran) plus the certificates in *extra_pem_file*
    (e.g. the C2PA trust list or partner registries' roots); ``None`` when there are none.
    A named extra file that is missing or holds no certificate is a configuration error.

    >>> default_trust_anchors(Settings(home=Path("/nonexistent"))) is None
    True
    """
    parts: list[bytes] = []
    with contextlib.suppress(ConfigError):  # no CA here: trust only the extra anchors
        parts.append(load_root(settings).cert.pem())
    if extra_pem_file is not None:
        try:
            extra = extra_pem_file.read_bytes()
            load_certificates(extra)
        except OSError as exc:
            raise ConfigError("config.c2pa_trust_anchors.unreadable", f"{extra_pem_file}: {exc.strerror}") from exc
        except (VerificationError, ValueError) as exc:
            raise ConfigError("config.c2pa_trust_anchors.malformed", f"{extra_pem_file}: no PEM certificates") from exc
        parts.append(extra)
    return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts) or None


def _write_file(path: Path, data: bytes, *, replace: bool) -> None:
    """Write via a temporary file; *replace*: ``os.replace``, else link (refusing to overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not write_atomically(path, data, replace=replace):
        raise KeyStoreError("ca.exists", f"{path}: already exists")
