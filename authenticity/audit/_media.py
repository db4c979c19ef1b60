"""Reviewer copies of flagged media: ``<home>/audit/media/<sha256 hex><suffix>``, content-addressed.

The name comes from the bytes actually copied and the suffix from their sniffed type — never from
the caller's file name, which may be hostile (``../``, control characters) or lie about the type.
The copy is written to a temporary file and hard-linked into place, so a reader never sees half a
file and two processes storing the same content both succeed. Files are private (0600): flagged
content may be sensitive. A copy whose transaction later rolls back stays behind; it is named by
its content, so the next flag of the same bytes reuses it.

>>> suffix_for(MediaType.JPEG)
'.jpg'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from authenticity.config import Settings
from authenticity.errors import MediaError, UsageError
from authenticity.media import DIGEST_PREFIX, SNIFF_BYTES, MediaType, inspect_media, sniff_bytes
from authenticity.media.hashing import sha256_file

__all__ = ["MEDIA_DIR", "StoredMedia", "media_file", "store_media", "suffix_for"]

MEDIA_DIR = "audit/media"  # relative to ``settings.home``; ``flagged_item.media_path`` is stored relative too
_SUFFIXES = {
    MediaType.JPEG: ".jpg", MediaType.PNG: ".png", MediaType.WEBP: ".webp", MediaType.GIF: ".gif",
    MediaType.TIFF: ".tif", MediaType.HEIC: ".heic", MediaType.AVIF: ".avif", MediaType.MP4: ".mp4",
    MediaType.MOV: ".mov", MediaType.WEBM: ".webm",
}  # fmt: skip
_STORED_NAME = re.compile(r"^audit/media/([0-9a-f]{64})\.[a-z0-9]{2,5}$")


@dataclass(frozen=True)
class StoredMedia:
    content_digest: str
    media_type: MediaType
    media_path: str  # relative to settings.home


def suffix_for(media_type: MediaType) -> str:
    """The file suffix a stored copy of *media_type* gets."""
    return _SUFFIXES[media_type]


def store_media(settings: Settings, source: Path, expected_digest: str | None = None) -> StoredMedia:
    """Copy *source* into the reviewer store; refuse it if its digest is not *expected_digest*.

    Raises ``media.*`` for a missing, empty, unreadable, undecodable, oversized or non-media file and
    ``audit.media.mismatch``
    when the bytes are not the ones the verdict was about (the file changed since it was verified).
    """
    # Decoded, not just sniffed: reviewers' browsers will render this file, so a decompression bomb or
    # a file that only looks like media never reaches the store (a reported upload is untrusted input).
    media_type = inspect_media(source, max_pixels=settings.max_pixels).media_type
    folder = settings.home / MEDIA_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    try:
        hasher = hashlib.sha256()
        head = b""
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(1 << 20):
                    hasher.update(chunk)
                    head += chunk[: max(0, SNIFF_BYTES - len(head))]
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        except OSError as exc:
            raise MediaError("media.file.unreadable", f"{source}: cannot copy ({exc.strerror or exc})") from exc
        digest = DIGEST_PREFIX + hasher.hexdigest()
        # Sniff again what was copied: the file may have been swapped after the first look.
        if sniff_bytes(head) is not media_type:
            raise MediaError("media.file.changed", f"{source}: changed while it was being copied")
        if expected_digest is not None and digest != expected_digest:
            raise UsageError(
                "audit.media.mismatch",
                f"{source}: its content is {digest}, not {expected_digest}",
                hint="the file changed since it was verified",
            )
        relative = f"{MEDIA_DIR}/{hasher.hexdigest()}{suffix_for(media_type)}"
        with contextlib.suppress(FileExistsError):  # the same content is already stored
            os.link(tmp, settings.home / relative)
    finally:
        os.unlink(tmp)
    return StoredMedia(digest, media_type, relative)


def media_file(settings: Settings, media_path: str | None, content_digest: str) -> Path:
    """The stored copy for an item, checked: ``audit.media.missing``, ``audit.media.path_invalid``
    (a ``media_path`` edited to point elsewhere, e.g. ``../../``) or ``audit.media.corrupt``."""
    if media_path is None:
        raise UsageError("audit.media.missing", "no media copy was stored for this item")
    match = _STORED_NAME.match(media_path)
    if match is None or DIGEST_PREFIX + match.group(1) != content_digest:
        raise UsageError("audit.media.path_invalid", f"stored media path {media_path!r} is not this item's copy")
    path = settings.home / media_path
    if not path.is_file():
        raise UsageError("audit.media.missing", f"{path}: stored copy is missing")
    if sha256_file(path) != content_digest:
        raise UsageError("audit.media.corrupt", f"{path}: stored copy no longer matches {content_digest}")
    return path
