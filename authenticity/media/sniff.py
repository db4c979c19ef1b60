"""Identify media files by their magic bytes (never by file name).

>>> sniff_bytes(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
<MediaType.PNG: 'image/png'>
"""

from __future__ import annotations

import enum
import struct
from pathlib import Path

from authenticity.errors import MediaError
from authenticity.media._containers import read_vint
from authenticity.media._files import display_path, read_head

__all__ = ["SNIFF_BYTES", "MediaType", "sniff_bytes", "sniff_file"]

SNIFF_BYTES = 4096
"""How many leading bytes :func:`sniff_file` reads."""


class MediaType(enum.StrEnum):
    """A media type we can identify, valued by its MIME type."""

    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"
    GIF = "image/gif"
    TIFF = "image/tiff"
    HEIC = "image/heic"
    AVIF = "image/avif"
    MP4 = "video/mp4"
    MOV = "video/quicktime"
    WEBM = "video/webm"

    @property
    def is_video(self) -> bool:
        """True for MP4, MOV and WebM.

        >>> MediaType.MOV.is_video, MediaType.HEIC.is_video
        (True, False)
        """
        return self.value.startswith("video/")


# ISO-BMFF brands (``ftyp`` major / compatible brands).
_AVIF_BRANDS = frozenset({"avif", "avis"})
_HEIC_BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs"})
# Generic HEIF brands: the compatible brands tell AVIF from HEIC; default HEIC.
_HEIF_GENERIC = frozenset({"mif1", "msf1", "mif2", "miaf"})
_MOV_BRANDS = frozenset({"qt  "})
_MP4_BRANDS = frozenset(
    {f"iso{n}" for n in "m23456789"}
    | {"mp41", "mp42", "mp71", "avc1", "av01", "M4V ", "M4VH", "M4VP", "dash", "msnv", "MSNV"}
    | {"XAVC", "cmfc", "cmfv", "cmff", "f4v ", "mmp4"}
)
# Pre-``ftyp`` QuickTime files start directly with one of these atoms.
_LEGACY_QT_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"pnot", b"free", b"skip"})


def _brand_type(brand: str) -> MediaType | None:
    if brand in _AVIF_BRANDS:
        return MediaType.AVIF
    if brand in _HEIC_BRANDS:
        return MediaType.HEIC
    if brand in _MOV_BRANDS:
        return MediaType.MOV
    if brand in _MP4_BRANDS:
        return MediaType.MP4
    return None


def _sniff_iso_bmff(head: bytes) -> MediaType | None:
    box_size = struct.unpack(">I", head[:4])[0]
    brands_at = 8
    if box_size == 1:  # 64-bit size follows the type (unusual for ftyp, but legal)
        box_size, brands_at = struct.unpack(">Q", head[8:16].ljust(8, b"\0"))[0], 16
    elif box_size == 0:
        box_size = len(head)
    if box_size < brands_at + 8:
        return None
    end = min(box_size, len(head))
    major = head[brands_at : brands_at + 4].decode("latin-1")
    compatible = [head[i : i + 4].decode("latin-1") for i in range(brands_at + 8, end - 3, 4)]
    found = _brand_type(major)
    if found is not None:
        return found
    candidates = {_brand_type(brand) for brand in compatible}
    # Priority when only compatible brands say it: AVIF, HEIC, MOV, then MP4.
    for media_type in (MediaType.AVIF, MediaType.HEIC, MediaType.MOV, MediaType.MP4):
        if media_type in candidates:
            return media_type
    if major in _HEIF_GENERIC or any(brand in _HEIF_GENERIC for brand in compatible):
        return MediaType.HEIC  # generic HEIF still image / sequence
    return None


def _ebml_doctype(head: bytes) -> str | None:
    element = read_vint(head, 0, keep_marker=True)
    size = read_vint(head, element[2], keep_marker=False) if element else None
    if size is None:
        return None
    pos, end = size[2], min(len(head), size[2] + size[0])
    while pos < end:
        child = read_vint(head, pos, keep_marker=True)
        child_size = read_vint(head, child[2], keep_marker=False) if child else None
        if child is None or child_size is None:
            return None
        payload, length = child_size[2], child_size[0]
        if child[0] == 0x4282:  # DocType
            return head[payload : payload + length].rstrip(b"\0").decode("ascii", "replace")
        pos = payload + length
    return None


def sniff_bytes(head: bytes) -> MediaType | None:
    """Identify media from its leading bytes; ``None`` when it is nothing we know.

    Only magic bytes count: TIFF-based camera RAW files (DNG, CR2, NEF) are TIFF.

    >>> sniff_bytes(b"\\xff\\xd8\\xff\\xe0" + bytes(12))
    <MediaType.JPEG: 'image/jpeg'>
    >>> sniff_bytes(b"\\x00\\x00\\x00\\x14ftypqt  \\x00\\x00\\x02\\x00qt  ")
    <MediaType.MOV: 'video/quicktime'>
    >>> sniff_bytes(b"hello") is None
    True
    """
    head = bytes(head)
    if head.startswith(b"\xff\xd8\xff"):
        return MediaType.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaType.PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return MediaType.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaType.WEBP
    if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):  # classic TIFF and BigTIFF
        return MediaType.TIFF
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_iso_bmff(head)
    if len(head) >= 8 and head[4:8] in _LEGACY_QT_ATOMS:
        size = struct.unpack(">I", head[:4])[0]
        return MediaType.MOV if size in (0, 1) or size >= 8 else None
    # Matroska (DocType "matroska") is the same container as WebM and decodes with
    # the same demuxer; there is no MKV member, so it is treated as WEBM.
    if head.startswith(b"\x1a\x45\xdf\xa3") and _ebml_doctype(head) in ("webm", "matroska"):
        return MediaType.WEBM
    return None


def sniff_file(path: Path) -> MediaType:
    """Identify the media type of the file at *path* from its first 4 KiB.

    Raises :class:`MediaError` with ``media.file.not_found``, ``media.file.is_directory``,
    ``media.file.unreadable``, ``media.file.empty`` or ``media.type.unsupported``.

    >>> sniff_file(Path("photo.jpg"))  # doctest: +SKIP
    <MediaType.JPEG: 'image/jpeg'>
    """
    path = Path(path)
    found = sniff_bytes(read_head(path, SNIFF_BYTES))
    if found is None:
        raise MediaError(
            "media.type.unsupported",
            f"{display_path(path)}: not a supported image or video (unrecognised leading bytes)",
        )
    return found
