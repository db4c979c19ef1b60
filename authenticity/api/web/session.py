"""Reviewer sessions for the web page: a signed cookie naming the API key, and per-session CSRF tokens.

Threat model and choices:

* The cookie never holds the API key. It holds ``v1.<api_key row id>.<issued unix time>.<nonce>``
  and an HMAC-SHA256 over that under a random 32-byte secret kept in ``<home>/keys/review-session.key``
  (0600). A file rather than a per-process secret so that every ``--workers`` process accepts the
  same sessions; the database never sees it, so a database dump cannot forge one.
* Every request re-reads the key's row: revoking the key (``authenticity apikey revoke``) or a role
  that is not ``reviewer``/``admin`` ends the session at once. Sessions expire after
  :data:`SESSION_TTL`. Logging out deletes the cookie; a copy of it taken before stays valid until it
  expires or the key is revoked (there is no server-side session table to strike it from).
* The cookie is ``HttpOnly`` (no script can read it), ``SameSite=Strict`` and ``Path=/review``,
  and ``Secure`` when the request came over https.
* CSRF: every form carries ``HMAC(secret, "csrf" || session nonce)`` in a hidden field, checked in
  constant time on POST; SameSite is defence in depth, not the defence (older browsers, same-site
  subdomains). The login form gets the same from a short-lived pre-session cookie, so a third-party
  page cannot log a reviewer into someone else's key either.

>>> signer = SessionSigner(b"k" * 32)
>>> token = signer.issue(7, now=1_000)
>>> signer.open(token, now=1_060).key_row_id
7
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Depends, Request
from sqlalchemy import select

from authenticity._files import write_atomically
from authenticity.api.deps import ApiContext, get_context
from authenticity.config import Settings
from authenticity.errors import AuthError
from authenticity.registry import apikeys, db
from authenticity.registry.apikeys import Principal, Role
from authenticity.registry.models import ApiKey

__all__ = ["COOKIE", "LOGIN_COOKIE", "REVIEW_ROLES", "SESSION_TTL", "OpenSession", "ReviewSession", "SessionSigner",
           "check_csrf", "login", "review_session", "session_signer"]  # fmt: skip

COOKIE = "authenticity_review"
LOGIN_COOKIE = "authenticity_review_login"
SESSION_TTL = timedelta(hours=8)
LOGIN_TTL = timedelta(minutes=30)
REVIEW_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})
_SECRET_FILE = "review-session.key"
_init_lock = threading.Lock()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class OpenSession:
    key_row_id: int
    nonce: str


class SessionSigner:
    """Issues and opens session tokens, and derives CSRF tokens, under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self._secret = secret

    def _mac(self, purpose: bytes, message: str) -> str:
        return _b64(hmac.new(self._secret, purpose + b"\x00" + message.encode(), hashlib.sha256).digest())

    def issue(self, key_row_id: int, *, now: float | None = None) -> str:
        payload = f"v1.{key_row_id}.{int(time.time() if now is None else now)}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._mac(b'session', payload)}"

    def open(self, token: str, *, now: float | None = None) -> OpenSession:
        """The session in *token*: ``auth.session.invalid`` (forged, edited) or ``auth.session.expired``."""
        parts = token.split(".")
        if not token.isascii() or len(parts) != 5 or parts[0] != "v1" or not (parts[1] + parts[2]).isdigit():
            raise AuthError("auth.session.invalid", "the session cookie is not valid; log in again")
        payload = ".".join(parts[:4])
        if not hmac.compare_digest(parts[4].encode(), self._mac(b"session", payload).encode()):
            raise AuthError("auth.session.invalid", "the session cookie is not valid; log in again")
        age = (time.time() if now is None else now) - int(parts[2])
        if not 0 <= age <= SESSION_TTL.total_seconds() + 60:
            raise AuthError("auth.session.expired", "the session has expired; log in again")
        return OpenSession(int(parts[1]), parts[3])

    def csrf_token(self, nonce: str) -> str:
        """The form token of the session (or login form) with this nonce."""
        return self._mac(b"csrf", nonce)


def _load_or_create_secret(settings: Settings) -> bytes:
    """The session secret, created on first use: written to a temporary file and hard-linked into place,
    so concurrent workers all end up with the one that won."""
    path = settings.keys_dir / _SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(path, secrets.token_bytes(32), replace=False, mode=0o600)
    return path.read_bytes()


def session_signer(request: Request, ctx: ApiContext = Depends(get_context)) -> SessionSigner:
    """The app's signer (its secret is read once per process)."""
    state = request.app.state
    with _init_lock:
        signer: SessionSigner | None = getattr(state, "review_signer", None)
        if signer is None:
            signer = state.review_signer = SessionSigner(_load_or_create_secret(ctx.settings))
    return signer


@dataclass(frozen=True)
class ReviewSession:
    """A logged-in reviewer: who (the API key's name and role) and the token their forms must carry."""

    principal: Principal
    csrf: str


def _principal_of(ctx: ApiContext, key_row_id: int) -> Principal:
    with db.session_scope(ctx.engine(), read_only=True) as session:
        row = session.get(ApiKey, key_row_id)
        if row is None:
            raise AuthError("auth.session.invalid", "the API key of this session no longer exists; log in again")
        if row.revoked_at is not None:
            raise AuthError("auth.revoked", f"the API key {row.name!r} has been revoked")
        principal = Principal(row.name, Role(row.role), row.signer_id, None)
    if principal.role not in REVIEW_ROLES:
        raise AuthError("auth.forbidden", f"the review page needs role reviewer or admin; {principal.name!r} is "
                        f"{principal.role}")  # fmt: skip
    return principal


def review_session(
    request: Request, ctx: ApiContext = Depends(get_context), signer: SessionSigner = Depends(session_signer)
) -> ReviewSession:
    """The reviewer behind the session cookie: 401 ``auth.session.missing`` / ``.invalid`` / ``.expired`` /
    ``auth.revoked``, 403 ``auth.forbidden``."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise AuthError("auth.session.missing", "log in with your API key first")
    opened = signer.open(token)
    return ReviewSession(_principal_of(ctx, opened.key_row_id), signer.csrf_token(opened.nonce))


def check_csrf(expected: str, presented: str | None) -> None:
    """Refuse a form whose token is not the session's (403 ``review.csrf.invalid``)."""
    if not presented or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise AuthError("review.csrf.invalid", "the form is out of date or did not come from this site; reload "
                        "the page and try again")  # fmt: skip


def login(ctx: ApiContext, key: str) -> tuple[int, Principal]:
    """Check a pasted API key: its row id and principal (401 ``auth.*``, 403 for a role that cannot review)."""
    key = key.strip()
    with db.session_scope(ctx.engine(), read_only=True) as session:
        principal = apikeys.authenticate(session, key)
        row_id = session.scalar(select(ApiKey.id).where(ApiKey.secret_hash == apikeys.hash_api_key(key)))
    if row_id is None:  # deleted between the two reads
        raise AuthError("auth.invalid", "the API key is not valid")
    if principal.role not in REVIEW_ROLES:
        raise AuthError("auth.forbidden", f"the review page needs role reviewer or admin; {principal.name!r} is "
                        f"{principal.role}")  # fmt: skip
    return row_id, principal
