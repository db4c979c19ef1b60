"""Image decoding behind bomb limits, with Pillow and OpenCV (private helpers).

Order of checks for one image: header size (Pillow ``Image.open`` reads only the
header) -> pixel limit -> full Pillow decode (``load()``; truncation raises because
``ImageFile.LOAD_TRUNCATED_IMAGES`` is left False - this module never sets it) ->
full OpenCV decode where OpenCV has a reader for the bytes. HEIC/AVIF that Pillow
cannot decode (no plugin) get ISO-BMFF structure checks instead, with the size taken
from the largest ``ispe`` property.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, features

from authenticity.errors import MediaError
from authenticity.media._containers import check_bmff, largest_ispe
from authenticity.media._files import display_path, stat_media_file
from authenticity.media.sniff import MediaType

__all__ = ["DecodedImage", "check_max_pixels", "decode_image", "one_line", "pillow_can_open", "to_bgr8"]

_HEIF_TYPES = (MediaType.HEIC, MediaType.AVIF)


@dataclass(frozen=True)
class DecodedImage:
    """Outcome of :func:`decode_image`: header size and, on request, BGR pixels."""

    width: int | None
    height: int | None
    pixels: NDArray[np.uint8] | None


def one_line(text: object) -> str:
    """Collapse whitespace so an exception text fits a one-line message."""
    return " ".join(str(text).split())


def check_max_pixels(max_pixels: int) -> None:
    """Reject a non-positive pixel limit (a programming error, not a media error)."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")


def _failed(path: Path, detail: str) -> MediaError:
    return MediaError("media.decode.failed", f"{display_path(path)}: {detail}")


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise _failed(path, f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise MediaError(
            "media.image.too_large",
            f"{display_path(path)}: {width}x{height} = {width * height} pixels exceeds "
            f"the limit of {max_pixels} (possible decompression bomb)",
        )


def pillow_can_open(media_type: MediaType) -> bool:
    """Whether the installed Pillow (plus plugins) has a decoder for *media_type*."""
    Image.init()
    if media_type is MediaType.HEIC:
        return "HEIF" in Image.OPEN  # registered by the pillow-heif plugin
    if media_type is MediaType.AVIF:
        if "AVIF" not in Image.OPEN:
            return False
        try:
            return bool(features.check_module("avif"))
        except ValueError:  # older Pillow: "AVIF" comes from a third-party plugin
            return True
    return True


def to_bgr8(array: NDArray[Any]) -> NDArray[np.uint8]:
    """Normalise a decoded array (gray, BGRA, 16-bit, float) to uint8 BGR ``HxWx3``.

    Alpha is dropped (not composited); 16-bit is scaled by 255/65535; floats are
    taken as 0..1.
    """
    kind, itemsize = array.dtype.kind, array.dtype.itemsize
    if kind == "u" and itemsize == 1:
        out: NDArray[Any] = array
    elif kind == "b":
        out = array.astype(np.uint8) * 255
    elif kind == "u" and itemsize == 2:
        out = cv2.convertScaleAbs(array.astype(np.uint16, copy=False), alpha=1.0 / 257.0)
    elif kind == "f":
        out = cv2.convertScaleAbs(np.clip(array, 0.0, 1.0).astype(np.float32, copy=False), alpha=255.0)
    elif kind in "ui":
        top = float(np.iinfo(array.dtype).max)
        out = np.rint(np.clip(array, 0, top) * (255.0 / top)).astype(np.uint8)
    else:
        raise ValueError(f"unsupported pixel dtype {array.dtype}")
    if out.ndim == 3 and out.shape[2] in (1, 2):
        out = out[:, :, 0]  # gray (+ alpha)
    if out.ndim == 2:
        out = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_GRAY2BGR)
    elif out.shape[2] == 4:
        out = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGRA2BGR)
    elif out.shape[2] > 4:
        out = out[:, :, :3]
    return np.ascontiguousarray(out, dtype=np.uint8)


def _pillow_to_bgr(img: Image.Image) -> NDArray[np.uint8]:
    if img.mode.startswith("I") or img.mode == "F":
        array: NDArray[Any] = np.asarray(img)
        if img.mode == "I":  # 32-bit container for 16-bit samples
            array = np.clip(array, 0, 65535).astype(np.uint16)
        return to_bgr8(array)
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return to_bgr8(np.asarray(rgb)[:, :, ::-1])


def _decode_with_pillow(path: Path, max_pixels: int, *, want_pixels: bool) -> tuple[int, int, NDArray[np.uint8] | None]:
    try:
        with Image.open(path) as img:  # reads the header only
            width, height = img.size
            _check_size(path, width, height, max_pixels)
            img.load()  # full decode; raises on truncated data
            pixels = _pillow_to_bgr(img) if want_pixels else None
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(
            "media.image.too_large",
            f"{display_path(path)}: {one_line(exc)} (Pillow's MAX_IMAGE_PIXELS guard)",
        ) from exc
    except MemoryError:
        raise
    except Exception as exc:  # untrusted bytes: any decoder failure means "not decodable"
        raise _failed(path, f"image does not decode ({type(exc).__name__}: {one_line(exc)})") from exc
    return width, height, pixels


def _opencv_has_reader(path: Path) -> bool:
    try:
        return bool(cv2.haveImageReader(os.fspath(path)))
    except cv2.error:
        return False


# libjpeg reports damaged entropy-coded data only as a *warning* on the C-level stderr
# and still returns an image, so a JPEG whose scan is garbage would count as decodable.
# We capture fd 2 around the OpenCV decode and treat those warnings as failures.
_JPEG_CORRUPT_MARKERS = (b"Corrupt JPEG data", b"Premature end of JPEG", b"Invalid JPEG", b"Bogus")
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _native_stderr() -> Iterator[list[bytes]]:
    """Capture what C libraries write to file descriptor 2 (serialised: fd 2 is process-wide)."""
    captured: list[bytes] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read())


def _decode_with_opencv(path: Path, media_type: MediaType) -> NDArray[Any]:
    try:
        with _native_stderr() as messages:
            decoded = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise _failed(path, f"OpenCV cannot decode the image ({one_line(exc)})") from exc
    if decoded is None or decoded.size == 0:
        raise _failed(path, "OpenCV cannot decode the image (corrupt or truncated)")
    if media_type is MediaType.JPEG and any(m in b"".join(messages) for m in _JPEG_CORRUPT_MARKERS):
        warning = b"".join(messages).decode(errors="replace").strip().splitlines()[0]
        raise _failed(path, f"JPEG data is corrupt ({one_line(warning)})")
    return np.asarray(decoded)


def decode_image(path: Path, media_type: MediaType, *, max_pixels: int, keep_pixels: bool) -> DecodedImage:
    """Validate that the image at *path* fully decodes; optionally return BGR pixels.

    Raises ``media.image.too_large`` before any pixel decoding, ``media.decode.failed``
    when either decoder fails, and ``media.type.unsupported`` when pixels are asked
    for but no installed decoder handles the format (HEIC without pillow-heif).
    """
    check_max_pixels(max_pixels)
    file_size = stat_media_file(path).st_size
    width: int | None = None
    height: int | None = None
    pixels: NDArray[np.uint8] | None = None
    if media_type in _HEIF_TYPES:
        boxes = check_bmff(path, file_size, frozenset({"meta", "moov"}))
        dims = largest_ispe(path, boxes)
        if dims is not None:
            width, height = dims
            _check_size(path, width, height, max_pixels)
    opencv_reads = _opencv_has_reader(path)
    if pillow_can_open(media_type):
        width, height, pixels = _decode_with_pillow(path, max_pixels, want_pixels=keep_pixels and not opencv_reads)
    if opencv_reads:
        decoded = _decode_with_opencv(path, media_type)
        if width is None or height is None:
            height, width = int(decoded.shape[0]), int(decoded.shape[1])
            _check_size(path, width, height, max_pixels)
        if keep_pixels:
            pixels = to_bgr8(decoded)
        del decoded
    if keep_pixels and pixels is None:
        raise MediaError(
            "media.type.unsupported",
            f"{display_path(path)}: no installed decoder for {media_type.name} pixels "
            "(install pillow-heif to decode HEIC)",
        )
    return DecodedImage(width, height, pixels)
