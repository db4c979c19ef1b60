"""API keys for the HTTP service: create, list, revoke, authenticate (take a session, never commit).

A key is ``auth_<prefix>_<secret>``: 8 hex characters shown in listings (so an operator
can tell keys apart) and 256 random bits. Only ``sha256(whole key)`` is stored; the key
itself is printed once, at creation. Roles: ``admin`` (signer administration),
``signer`` (a capture device registering manifests for the one signer it is bound to),
``reviewer`` (verifies and reviews flagged content).

Why no slow password hash and no constant-time compare: the secret is 256 random bits,
so there is nothing to brute-force that a slow hash would slow down, and keys are found
by an indexed lookup on the hash of the presented key. A timing leak in that lookup can
only tell an attacker how many leading bytes of ``sha256(guess)`` match a stored digest;
they choose the guess but not its hash, so that leak does not help them build a key
whose digest matches (it would need a SHA-256 preimage).

>>> # with db.session_scope(engine) as s: created = create_api_key(s, "ci", Role.ADMIN, now)
>>> # created.secret  -> 'auth_3f2a9c1e_…' (show once, never stored)
>>> looks_like_api_key("auth_0123abcd_" + "A" * 43)
True
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from authenticity.errors import AuthError, RegistryError, UsageError
from authenticity.registry import repository
from authenticity.registry.models import ApiKey

__all__ = [
    "ApiKeyInfo",
    "AuthError",
    "CreatedApiKey",
    "Principal",
    "Role",
    "authenticate",
    "create_api_key",
    "hash_api_key",
    "list_api_keys",
    "looks_like_api_key",
    "revoke_api_key",
]

_KEY_RE = re.compile(r"^auth_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class Role(enum.StrEnum):
    ADMIN = "admin"
    SIGNER = "signer"
    REVIEWER = "reviewer"


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown about a key: never the secret."""

    name: str
    role: Role
    prefix: str
    signer: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiKey) -> ApiKeyInfo:
        return cls(row.name, Role(row.role), row.prefix, row.signer.name if row.signer else None,
                   row.created_at, row.revoked_at)  # fmt: skip


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key: ``secret`` is the full key, to be shown exactly once."""

    info: ApiKeyInfo
    secret: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and role, and for a device key the signer it is bound to."""

    name: str
    role: Role
    signer_id: int | None = None
    signer: str | None = None


def hash_api_key(key: str) -> bytes:
    """The stored form of a key.

    >>> len(hash_api_key("auth_0123abcd_x"))
    32
    """
    return hashlib.sha256(key.encode()).digest()


def looks_like_api_key(key: str) -> bool:
    """Cheap syntax check, so garbage never reaches the database."""
    return _KEY_RE.match(key) is not None


def _validate_name(name: str) -> str:
    if not _NAME_RE.match(name) or ".." in name:
        rule = "use 1-64 of a-z 0-9 . _ - starting with a letter or digit"
        raise UsageError("usage.apikey_name.invalid", f"invalid API key name {name!r}: {rule}")
    return name


def _find(session: Session, name: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.name == name)).unique().first()


def create_api_key(session: Session, name: str, role: Role, now: datetime, signer: str | None = None) -> CreatedApiKey:
    """Create a key. A ``signer`` key must name an active signer; other roles must not.

    Raises ``usage.apikey_name.invalid``, ``usage.apikey.signer_required``,
    ``usage.apikey.signer_unexpected``, ``registry.signer.not_found``,
    ``registry.signer.revoked`` or ``registry.apikey.exists``.
    """
    _validate_name(name)
    role = Role(role)
    signer_id: int | None = None
    if role is Role.SIGNER:
        if not signer:
            raise UsageError("usage.apikey.signer_required", "a signer key must be bound to a signer (--signer NAME)")
        row = repository.get_signer(session, signer)
        if row.revocation is not None:
            raise RegistryError("registry.signer.revoked", f"signer {signer!r} is revoked")
        signer_id = row.id
    elif signer:
        raise UsageError(
            "usage.apikey.signer_unexpected", f"only role 'signer' is bound to a signer, not {role.value!r}"
        )
    if _find(session, name) is not None:
        raise RegistryError("registry.apikey.exists", f"an API key named {name!r} already exists")
    prefix = secrets.token_hex(4)
    secret = f"auth_{prefix}_{secrets.token_urlsafe(32)}"
    row_key = ApiKey(name=name, role=role.value, prefix=prefix, secret_hash=hash_api_key(secret),
                     signer_id=signer_id, created_at=now)  # fmt: skip
    session.add(row_key)
    session.flush()
    session.refresh(row_key)
    return CreatedApiKey(ApiKeyInfo.from_row(row_key), secret)


def list_api_keys(session: Session) -> Sequence[ApiKeyInfo]:
    """Every key (active and revoked) by name."""
    rows = session.scalars(select(ApiKey).order_by(ApiKey.name)).unique().all()
    return [ApiKeyInfo.from_row(row) for row in rows]


def revoke_api_key(session: Session, name: str, now: datetime) -> ApiKeyInfo:
    """Revoke a key for good (``registry.apikey.not_found``, ``registry.apikey.already_revoked``)."""
    row = _find(session, name)
    if row is None:
        raise RegistryError("registry.apikey.not_found", f"no API key named {name!r}")
    if row.revoked_at is not None:
        raise RegistryError("registry.apikey.already_revoked", f"API key {name!r} is already revoked")
    row.revoked_at = now
    session.flush()
    return ApiKeyInfo.from_row(row)


def authenticate(session: Session, key: str | None) -> Principal:
    """The principal behind a presented key; ``auth.missing``, ``auth.invalid`` or ``auth.revoked``.

    >>> # authenticate(session, request_header_value).role
    """
    if not key:
        raise AuthError("auth.missing", "no API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    if not looks_like_api_key(key):
        raise AuthError("auth.invalid", "the API key is not valid")
    row = session.scalars(select(ApiKey).where(ApiKey.secret_hash == hash_api_key(key))).unique().first()
    if row is None:
        raise AuthError("auth.invalid", "the API key is not valid")
    if row.revoked_at is not None:
        raise AuthError("auth.revoked", f"the API key {row.name!r} has been revoked")
    return Principal(row.name, Role(row.role), row.signer_id, row.signer.name if row.signer else None)
