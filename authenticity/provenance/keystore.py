"""Where private keys live on disk: ``<home>/keys/<signer>.key`` and the log key.

Private keys never enter the database. Signer keys are encrypted PKCS#8 (mode 0600);
the log key is stored unencrypted (mode 0600) because the log must sign tree heads
unattended — its protection is the file system of the log operator's host, and a
stolen log key still cannot forge *records* (they carry the signer's signature), only
tree heads, which `log check` and consistency proofs against earlier heads expose.

>>> # key = create_signer_key(settings, "cam-1", Algorithm.ED25519, b"pass")
"""

from __future__ import annotations

from pathlib import Path

from authenticity._files import write_atomically
from authenticity.config import Settings
from authenticity.errors import KeyStoreError
from authenticity.provenance.keys import Algorithm, SigningKey, generate_signing_key, load_private_key, save_private_key

__all__ = ["create_signer_key", "ensure_log_key", "load_signer_key", "signer_key_path", "trusted_log_key_ids"]


def signer_key_path(settings: Settings, name: str) -> Path:
    """Path of a signer's private key (the name is validated by the registry first)."""
    return settings.keys_dir / f"{name}.key"


def create_signer_key(settings: Settings, name: str, algorithm: Algorithm, passphrase: bytes) -> SigningKey:
    """Generate and store an encrypted key for *name*; refuses an empty passphrase."""
    if not passphrase:
        raise KeyStoreError("key.passphrase.empty", "an empty passphrase would leave the private key unencrypted")
    key = generate_signing_key(algorithm)
    save_private_key(key, signer_key_path(settings, name), passphrase)
    return key


def load_signer_key(settings: Settings, name: str, passphrase: bytes | None) -> SigningKey:
    """Load and decrypt a signer's key."""
    return load_private_key(signer_key_path(settings, name), passphrase)


def ensure_log_key(settings: Settings) -> SigningKey:
    """Load the log key, creating it on first use.

    Safe when several processes start at once: the key is written to a temporary file
    and hard-linked into place, so exactly one creator wins and the rest load its key.
    """
    path = settings.log_key_path
    if path.exists():
        return load_private_key(path, None)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_signing_key(Algorithm.ED25519)
    write_atomically(path, key.private_pem(None), replace=False, mode=0o600)  # a racing process may win
    return load_private_key(path, None)


def trusted_log_key_ids(settings: Settings) -> frozenset[str]:
    """Key ids allowed to sign tree heads: the local log key plus configured ones.

    Trust comes from outside the database on purpose: anyone who can write the
    ``log_key`` table could otherwise add a key and re-sign a rewritten history.
    """
    trusted = {k.lower() for k in settings.trusted_log_keys}
    if settings.log_key_path.exists():
        trusted.add(load_private_key(settings.log_key_path, None).key_id)
    return frozenset(trusted)
