"""Media handling: identify, hash, validate and read metadata of images and videos.

>>> from pathlib import Path
>>> from authenticity.media import inspect_media, sha256_file
>>> info = inspect_media(Path("photo.jpg"))  # doctest: +SKIP
>>> sha256_file(info.path)  # doctest: +SKIP
'sha256:...'

Every failure raises :class:`authenticity.errors.MediaError` with a stable code:
``media.file.not_found``, ``media.file.is_directory``, ``media.file.empty``,
``media.file.unreadable``, ``media.type.unsupported``, ``media.decode.failed`` or
``media.image.too_large``.
"""

from __future__ import annotations

from authenticity.media.hashing import DIGEST_PREFIX, parse_digest, sha256_bytes, sha256_file
from authenticity.media.inspect import DEFAULT_MAX_PIXELS, MediaInfo, inspect_media, load_image_bgr
from authenticity.media.metadata import CaptureMetadata, read_capture_metadata
from authenticity.media.sniff import SNIFF_BYTES, MediaType, sniff_bytes, sniff_file

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DIGEST_PREFIX",
    "SNIFF_BYTES",
    "CaptureMetadata",
    "MediaInfo",
    "MediaType",
    "inspect_media",
    "load_image_bgr",
    "parse_digest",
    "read_capture_metadata",
    "sha256_bytes",
    "sha256_file",
    "sniff_bytes",
    "sniff_file",
]
