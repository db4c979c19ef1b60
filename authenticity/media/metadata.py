"""Capture metadata (when, with what) from EXIF for images and OpenCV for videos.

Metadata is best effort: a file without EXIF, or with EXIF Pillow cannot parse,
gives ``None`` fields rather than an error. Video container metadata (make, model,
creation time) is not readable through OpenCV, so videos only get a size.

>>> CaptureMetadata(device_make="Canon", width=640, height=480).to_dict()
{'device_make': 'Canon', 'width': 640, 'height': 480}
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
from PIL import Image
from PIL.ExifTags import IFD, Base

from authenticity.errors import MediaError
from authenticity.media._decode import check_max_pixels, one_line, pillow_can_open
from authenticity.media._files import display_path, stat_media_file
from authenticity.media._video import open_capture
from authenticity.media.sniff import MediaType

__all__ = ["CaptureMetadata", "read_capture_metadata"]

_DATETIME_RE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"([+-])(\d{2}):(\d{2})")
_SUBSEC_RE = re.compile(r"\d{1,9}")


@dataclass(frozen=True)
class CaptureMetadata:
    """Where a capture came from, as far as the file says.

    ``captured_at`` is ISO 8601 (with the UTC offset when the file records one).
    """

    captured_at: str | None = None
    device_make: str | None = None
    device_model: str | None = None
    software: str | None = None
    width: int | None = None
    height: int | None = None

    def to_dict(self) -> dict[str, str | int]:
        """The fields that are set, for JSON (``None`` fields are omitted).

        >>> CaptureMetadata(software="GIMP").to_dict()
        {'software': 'GIMP'}
        """
        return {key: value for key, value in asdict(self).items() if value is not None}


def _clean(value: object) -> str | None:
    """EXIF text: cut at the first NUL, control characters to spaces, trimmed."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = value.split("\0", 1)[0]
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text or None


def _iso_datetime(stamp: object, offset: object, subsec: object) -> str | None:
    text = _clean(stamp)
    match = _DATETIME_RE.fullmatch(text) if text else None
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00" and other placeholders
        return None
    fraction = _clean(subsec)
    if fraction and _SUBSEC_RE.fullmatch(fraction):
        moment = moment.replace(microsecond=int(fraction.ljust(6, "0")[:6]))
    zone = _clean(offset)
    zone_match = _OFFSET_RE.fullmatch(zone) if zone else None
    if zone_match is not None:
        sign, hours, minutes = zone_match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        with contextlib.suppress(ValueError):  # an offset of 24h or more is ignored
            moment = moment.replace(tzinfo=timezone(-delta if sign == "-" else delta))
    return moment.isoformat()


def _exif_fields(exif: Image.Exif) -> tuple[str | None, str | None, str | None, str | None]:
    try:
        sub = exif.get_ifd(IFD.Exif)
    except Exception:  # corrupt Exif IFD pointer: keep what IFD0 has
        sub = {}

    def tag(tag_id: int) -> object:
        return sub.get(tag_id, exif.get(tag_id))  # some writers misplace Exif tags in IFD0

    captured = _iso_datetime(
        tag(Base.DateTimeOriginal), tag(Base.OffsetTimeOriginal), tag(Base.SubsecTimeOriginal)
    ) or _iso_datetime(exif.get(Base.DateTime), tag(Base.OffsetTime), tag(Base.SubsecTime))
    return captured, _clean(exif.get(Base.Make)), _clean(exif.get(Base.Model)), _clean(exif.get(Base.Software))


def _image_metadata(path: Path, media_type: MediaType, max_pixels: int) -> CaptureMetadata:
    if not pillow_can_open(media_type):
        return CaptureMetadata()  # e.g. HEIC without pillow-heif: nothing readable
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:  # PNG EXIF may sit after IDAT: getexif() decodes
                raise MediaError(
                    "media.image.too_large",
                    f"{display_path(path)}: {width}x{height} pixels exceeds the limit of {max_pixels}",
                )
            try:
                fields = _exif_fields(img.getexif())
            except MediaError:
                raise
            except Exception:  # unreadable EXIF is "no EXIF", not an error
                fields = (None, None, None, None)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError("media.image.too_large", f"{display_path(path)}: {one_line(exc)}") from exc
    except Exception as exc:
        raise MediaError(
            "media.decode.failed", f"{display_path(path)}: image header does not parse ({one_line(exc)})"
        ) from exc
    captured, make, model, software = fields
    return CaptureMetadata(captured, make, model, software, width, height)


def _video_metadata(path: Path) -> CaptureMetadata:
    try:
        capture = open_capture(path)
        try:
            if not capture.isOpened():
                raise MediaError("media.decode.failed", f"{display_path(path)}: video does not open")
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            capture.release()
    except cv2.error as exc:
        raise MediaError("media.decode.failed", f"{display_path(path)}: video does not open ({one_line(exc)})") from exc
    return CaptureMetadata(width=width or None, height=height or None)


def read_capture_metadata(path: Path, media_type: MediaType, *, max_pixels: int = 100_000_000) -> CaptureMetadata:
    """Read capture time, device and software for the file at *path*.

    Images: EXIF ``DateTimeOriginal`` (+ ``OffsetTimeOriginal``/``SubsecTimeOriginal``),
    falling back to ``DateTime``; ``Make``, ``Model``, ``Software``; size from the
    header. Videos: width/height from OpenCV only. Never raises for a file without
    EXIF; raises :class:`MediaError` for file problems (``media.file.*``), an image
    over *max_pixels* (``media.image.too_large``) or a header that does not parse.

    >>> read_capture_metadata(Path("photo.jpg"), MediaType.JPEG).device_make  # doctest: +SKIP
    'Canon'
    """
    check_max_pixels(max_pixels)
    path = Path(path)
    if stat_media_file(path).st_size == 0:
        raise MediaError("media.file.empty", f"{display_path(path)}: file is empty")
    if media_type.is_video:
        return _video_metadata(path)
    return _image_metadata(path, media_type, max_pixels)
