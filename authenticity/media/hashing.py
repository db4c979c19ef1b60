"""Content digests in the project's ``sha256:<hex>`` form.

>>> sha256_bytes(b"")
'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from authenticity.errors import MediaError, UsageError
from authenticity.media._files import display_path, stat_media_file

__all__ = ["DIGEST_PREFIX", "parse_digest", "sha256_bytes", "sha256_file"]

DIGEST_PREFIX = "sha256:"
_DIGEST_RE = re.compile(r"sha256:([0-9a-fA-F]{64})")


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 of in-memory *data* as ``"sha256:<64 lowercase hex>"``.

    >>> sha256_bytes(b"abc")[:15]
    'sha256:ba7816bf'
    """
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def sha256_file(
    path: Path,
    *,
    chunk_size: int = 1 << 20,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Stream the file at *path* through SHA-256 in constant memory.

    *progress*, when given, is called after each chunk with the number of bytes just
    hashed (the calls sum to the file size). An empty file is fine (it has a digest);
    a missing, directory or unreadable path raises :class:`MediaError`
    (``media.file.*``).

    >>> sha256_file(Path("clip.mp4"), progress=bar.update)  # doctest: +SKIP
    'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    path = Path(path)
    stat_media_file(path)
    digest = hashlib.sha256()
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as handle:
            while True:
                count = handle.readinto(buffer)
                if not count:
                    break
                digest.update(view[:count])
                if progress is not None:
                    progress(count)
    except PermissionError as exc:
        shown = display_path(path)
        raise MediaError("media.file.unreadable", f"{shown}: cannot read file (permission denied)") from exc
    except FileNotFoundError as exc:
        raise MediaError("media.file.not_found", f"{display_path(path)}: file not found") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MediaError("media.file.unreadable", f"{display_path(path)}: cannot read file ({reason})") from exc
    return DIGEST_PREFIX + digest.hexdigest()


def parse_digest(s: str) -> bytes:
    """Validate a ``sha256:<64 hex>`` string and return the 32 raw digest bytes.

    Hex digits may be upper or lower case; anything else (other algorithms, wrong
    length, whitespace) raises ``UsageError("usage.digest.invalid", ...)``.

    >>> parse_digest("sha256:" + "ab" * 32)[:2]
    b'\\xab\\xab'
    """
    match = _DIGEST_RE.fullmatch(s) if isinstance(s, str) else None
    if match is None:
        shown = repr(s) if len(repr(s)) <= 80 else repr(s)[:77] + "..."
        raise UsageError(
            "usage.digest.invalid",
            f"invalid digest {shown}: expected 'sha256:' followed by 64 hex digits",
        )
    return bytes.fromhex(match.group(1))
