"""Request dependencies: the per-app context, API-key authentication with roles, streamed uploads.

Threat model for ``POST /v1/verify`` uploads: the body is hostile. It is streamed to a
file that *we* name, inside a fresh per-request folder under ``<home>/tmp/uploads``; the
client's file name and Content-Type are never used. The byte limit is enforced while
streaming (and up front from Content-Length), so an oversized upload is refused without
reading the rest; the first 4 KiB are sniffed as soon as they arrive.

>>> # @router.get("/x")
>>> # def x(who: Principal = Depends(require_roles(Role.ADMIN))) -> ...
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import Engine
from starlette.requests import ClientDisconnect

from authenticity.audit.workflow import flag_verdict
from authenticity.config import Settings
from authenticity.errors import AuthError, MediaError
from authenticity.media.sniff import SNIFF_BYTES, sniff_bytes
from authenticity.provenance.keys import SigningKey
from authenticity.provenance.keystore import ensure_log_key
from authenticity.registry import apikeys, db
from authenticity.registry.apikeys import Principal, Role
from authenticity.registry.store import open_registry

if TYPE_CHECKING:
    from authenticity.api.app import ApiMetrics
    from authenticity.verify import Verdict, Verifier

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "ApiContext", "ApiLimits", "current_principal", "get_context",
           "require_roles", "spool_upload", "spool_upload_with_fields"]  # fmt: skip

DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_MULTIPART_SLACK = 64 * 1024  # boundaries, part headers and small text fields around the file
_FIELD_LIMIT = 16 * 1024  # one text field next to the file (a report's reason)


@dataclass(frozen=True)
class ApiLimits:
    """Request limits. ``manifest_max_age`` is the replay window for a never-seen digest."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_json_bytes: int = 1024 * 1024
    manifest_max_age: timedelta = timedelta(minutes=10)
    manifest_max_skew: timedelta = timedelta(minutes=2)  # a device clock slightly ahead of ours


class ApiContext:
    """What one app shares between requests: settings, engine, log key and the one verifier.

    The verifier (detector + near-match index) is not thread-safe and slow to build: it is
    built once, lazily or at startup, and every use holds ``verify_lock``.
    """

    def __init__(self, settings: Settings, *, detector: bool, limits: ApiLimits, metrics: ApiMetrics) -> None:
        self.settings, self.detector, self.limits, self.metrics = settings, detector, limits, metrics
        self.verify_lock = threading.Lock()
        self._init_lock = threading.Lock()
        self._engine: Engine | None = None
        self._log_key: SigningKey | None = None
        self._verifier: Verifier | None = None

    def engine(self) -> Engine:
        """The registry engine (migrated on first use; a down database raises ``registry.*``)."""
        with self._init_lock:
            if self._engine is None:
                self._engine = open_registry(self.settings)
            return self._engine

    def log_key(self) -> SigningKey:
        with self._init_lock:
            if self._log_key is None:
                self._log_key = ensure_log_key(self.settings)
            return self._log_key

    def warm_up(self) -> None:
        """Open the registry and build the verifier now rather than on the first request."""
        self.engine()
        with self.verify_lock:
            self._get_verifier()

    def _get_verifier(self) -> Verifier:
        if self._verifier is None:
            from authenticity.verify import Verifier

            self.log_key()  # the verifier trusts the log key it finds at start: create it first
            self._verifier = Verifier(self.settings, detector=self.detector)
        return self._verifier

    def verify(self, path: Path) -> Verdict:
        """Verify one file under the lock (call from a worker thread)."""
        self.engine()
        with self.verify_lock:
            return self._get_verifier().verify(path)

    def upload_dir(self) -> Path:
        """A fresh private folder for one request's upload; the caller removes it."""
        root = self.settings.home / "tmp" / "uploads"
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Path(tempfile.mkdtemp(dir=root, prefix="req-"))

    def flag(self, verdict: Verdict, media: Path, actor: str) -> int | None:
        """Queue the verdict's content for review when the flagging policy says so; the item's id, else None."""
        with db.session_scope(self.engine()) as session:
            item = flag_verdict(session, self.settings, verdict, media=media, actor=actor)
            return item.id if item is not None else None


def get_context(request: Request) -> ApiContext:
    """The app's :class:`ApiContext` (set by the factory)."""
    return cast(ApiContext, request.app.state.context)


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer auth_<prefix>_<secret>")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Alternative to the bearer header")


def current_principal(
    request: Request,
    ctx: ApiContext = Depends(get_context),
    bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
    header_key: str | None = Security(_header_key),
) -> Principal:
    """Authenticate the caller: 401 ``auth.missing`` / ``auth.invalid`` / ``auth.revoked``."""
    if request.headers.get("authorization") is not None and bearer is None:
        raise AuthError("auth.invalid", "the Authorization header must be 'Bearer <key>'")
    presented = bearer.credentials if bearer is not None else None
    if presented and header_key and presented != header_key:
        raise AuthError("auth.invalid", "Authorization and X-API-Key carry different keys")
    with db.session_scope(ctx.engine(), read_only=True) as session:
        return apikeys.authenticate(session, presented or header_key)


def require_roles(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits only *roles* (403 ``auth.forbidden`` for the others).

    >>> callable(require_roles(Role.ADMIN))
    True
    """
    allowed = frozenset(roles)

    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in allowed:
            wanted = " or ".join(sorted(r.value for r in allowed))
            raise AuthError("auth.forbidden", f"this needs role {wanted}; key {principal.name!r} is {principal.role}")
        return principal

    return dependency


class _FilePart:
    """Receives the multipart callbacks; writes the part named ``file``, keeps the small text
    fields named in *fields* and ignores the rest."""

    def __init__(self, target: Path, limit: int, fields: frozenset[str] = frozenset()) -> None:
        self.target, self.limit, self.wanted = target, limit, fields
        self.fields: dict[str, bytes] = {}
        self._text: str | None = None  # the wanted text field being received
        self.size = 0
        self.head = b""
        self.state = "none"  # none | writing | done
        self._fh: IO[bytes] | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._headers = {}
        name = params.get(b"name", b"").decode("latin-1")
        if name in self.wanted:
            if name in self.fields:
                raise MediaError("upload.malformed", f"send the field {name!r} once")
            self._text, self.fields[name] = name, b""
            return
        if name != "file":
            return  # another field: its bytes only count towards the total
        if self.state != "none":
            raise MediaError("upload.malformed", "send exactly one part named 'file'")
        self.state = "writing"
        self._fh = open(self.target, "xb")  # noqa: SIM115 - closed in on_part_end / close()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._text is not None:
            self.fields[self._text] += data[start:end]
            if len(self.fields[self._text]) > _FIELD_LIMIT:
                raise MediaError("upload.malformed", f"the field {self._text!r} is longer than {_FIELD_LIMIT} bytes")
            return
        if self._fh is None:
            return
        chunk = data[start:end]
        self.size += len(chunk)
        if self.size > self.limit:
            raise MediaError("upload.too_large", f"the upload exceeds {self.limit} bytes")
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
            if len(self.head) >= SNIFF_BYTES:
                self.sniff()
        self._fh.write(chunk)

    def on_part_end(self) -> None:
        self._text = None
        if self._fh is not None:
            self.close()
            self.state = "done"

    def sniff(self) -> None:
        if sniff_bytes(self.head) is None:
            raise MediaError("media.type.unsupported", "upload: not a supported image or video (unrecognised bytes)")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


async def spool_upload(request: Request, ctx: ApiContext, folder: Path) -> Path:
    """Stream the multipart part ``file`` into ``folder/upload`` and return that path.

    Raises ``upload.malformed`` (400), ``upload.missing`` (422), ``upload.too_large`` (413)
    or ``media.type.unsupported`` (415) as soon as the bytes read so far prove it.
    """
    path, _ = await spool_upload_with_fields(request, ctx, folder, frozenset())
    return path


async def spool_upload_with_fields(
    request: Request, ctx: ApiContext, folder: Path, fields: frozenset[str]
) -> tuple[Path, dict[str, str]]:
    """:func:`spool_upload`, also returning the text fields named in *fields* that were sent (UTF-8,
    at most ``_FIELD_LIMIT`` bytes each, else ``upload.malformed``)."""
    limit = ctx.limits.max_upload_bytes
    mime, params = parse_options_header(request.headers.get("content-type", ""))
    if mime != b"multipart/form-data" or not params.get(b"boundary"):
        raise MediaError("upload.malformed", "send the media as multipart/form-data with a part named 'file'")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _MULTIPART_SLACK:
        raise MediaError("upload.too_large", f"the upload exceeds {limit} bytes")
    sink = _FilePart(folder / "upload", limit, fields)
    names = (
        "on_header_field",
        "on_header_value",
        "on_header_end",
        "on_headers_finished",
        "on_part_data",
        "on_part_end",
    )
    callbacks = {name: getattr(sink, name) for name in names}
    parser = MultipartParser(params[b"boundary"], cast(Any, callbacks))
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + _MULTIPART_SLACK:
                raise MediaError("upload.too_large", f"the upload exceeds {limit} bytes")
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise MediaError("upload.malformed", "the multipart body cannot be parsed") from exc
    except ClientDisconnect as exc:
        raise MediaError("upload.malformed", "the client disconnected during the upload") from exc
    finally:
        sink.close()
    if sink.state == "none":
        raise MediaError("upload.missing", "no part named 'file' in the upload")
    if sink.state != "done":
        raise MediaError("upload.malformed", "the multipart body ended inside the file part")
    if 0 < len(sink.head) < SNIFF_BYTES:
        sink.sniff()
    try:
        return sink.target, {name: value.decode() for name, value in sink.fields.items()}
    except UnicodeDecodeError as exc:
        raise MediaError("upload.malformed", "form fields must be UTF-8 text") from exc
