"""Validate that a media file really decodes, and load images for detectors.

What "validates" means per type:

* JPEG, PNG, WebP, GIF, TIFF, AVIF: the header size is checked against
  ``max_pixels`` before any decoding, then the image is fully decoded by Pillow
  and, where OpenCV has a reader for it, by OpenCV too. Both must succeed.
* HEIC (and AVIF where Pillow has no AVIF support): without a decoder plugin
  (pillow-heif) the check is header-level only: the top-level ISO-BMFF boxes must
  fit in the file (truncation fails) and a ``meta`` box must exist; the size comes
  from the largest ``ispe`` property and is checked against ``max_pixels``.
* MP4/MOV: top-level boxes must fit in the file and ``moov`` must exist; WebM: the
  EBML header and Segment must fit. Then OpenCV (FFmpeg) must decode a frame.

Pixel sizes are as stored: the EXIF Orientation tag is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from authenticity.errors import MediaError
from authenticity.media._decode import check_max_pixels, decode_image
from authenticity.media._files import display_path, stat_media_file
from authenticity.media._video import probe_video
from authenticity.media.sniff import MediaType, sniff_file

__all__ = ["DEFAULT_MAX_PIXELS", "MediaInfo", "inspect_media", "load_image_bgr"]

DEFAULT_MAX_PIXELS = 100_000_000
"""Default decompression-bomb limit (pixels in one image), checked before decoding."""


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`inspect_media` learned about a file that decodes.

    ``frame_count`` is for videos (``None`` for images, or when the container does
    not say); ``width``/``height`` are ``None`` only for a HEIC without a decoder
    plugin whose ``ispe`` property could not be read.
    """

    path: Path
    media_type: MediaType
    size_bytes: int
    width: int | None
    height: int | None
    frame_count: int | None
    pixels: NDArray[np.uint8] | None = field(default=None, repr=False, compare=False)  # with keep_pixels


def inspect_media(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, keep_pixels: bool = False) -> MediaInfo:
    """Sniff the file at *path* and check that it really decodes.

    Raises :class:`MediaError`: ``media.file.*`` (missing, directory, empty,
    unreadable), ``media.type.unsupported``, ``media.image.too_large`` (refused from
    the header, before decoding) or ``media.decode.failed`` (corrupt or truncated).
    Pillow's own guard (``PIL.Image.MAX_IMAGE_PIXELS``, process-wide) also applies:
    above it Pillow warns, above twice it refuses (mapped to ``media.image.too_large``).
    With *keep_pixels*, an image's decoded BGR pixels (as :func:`load_image_bgr` returns
    them) ride along in ``pixels``, so a caller that needs them decodes once, not twice.

    >>> info = inspect_media(Path("photo.jpg"))  # doctest: +SKIP
    >>> info.media_type, info.width, info.height  # doctest: +SKIP
    (<MediaType.JPEG: 'image/jpeg'>, 4032, 3024)
    """
    check_max_pixels(max_pixels)
    path = Path(path)
    media_type = sniff_file(path)
    size_bytes = stat_media_file(path).st_size
    if media_type.is_video:
        width, height, frames = probe_video(path, media_type)
        return MediaInfo(path, media_type, size_bytes, width, height, frames)
    decoded = decode_image(path, media_type, max_pixels=max_pixels, keep_pixels=keep_pixels)
    return MediaInfo(path, media_type, size_bytes, decoded.width, decoded.height, None, decoded.pixels)


def load_image_bgr(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> NDArray[np.uint8]:
    """Decode the image at *path* to a uint8 BGR array of shape ``(height, width, 3)``.

    Gray is replicated to three channels, alpha is dropped (not composited) and
    16-bit samples are scaled to 8 bits. The same validation and error codes as
    :func:`inspect_media` apply; a video raises ``media.type.unsupported``, as does
    HEIC when no HEIC decoder is installed.

    >>> load_image_bgr(Path("photo.png")).shape  # doctest: +SKIP
    (480, 640, 3)
    """
    check_max_pixels(max_pixels)
    path = Path(path)
    media_type = sniff_file(path)
    if media_type.is_video:
        raise MediaError(
            "media.type.unsupported",
            f"{display_path(path)}: is a video ({media_type.value}), not an image",
        )
    decoded = decode_image(path, media_type, max_pixels=max_pixels, keep_pixels=True)
    assert decoded.pixels is not None  # decode_image raises rather than return none
    return decoded.pixels
