"""Builders of real and hand-crafted media for ``tests/test_media.py``.

Real files come from OpenCV/Pillow encoders; container headers (HEIC, AVIF, MOV,
WebM, PNG bombs) are assembled byte by byte with correct sizes and CRCs.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image
from PIL.ExifTags import IFD, Base


def gradient(height: int = 48, width: int = 64) -> NDArray[np.uint8]:
    """A smooth BGR test picture (compresses well, decodes deterministically)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], axis=-1).astype(np.uint8)


def noisy(height: int = 240, width: int = 320, seed: int = 0) -> NDArray[np.uint8]:
    """A gradient plus noise, so a JPEG has a long entropy-coded scan."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 200 // width, y * 200 // height, (x + y) * 100 // (width + height)], axis=-1)
    return (base + rng.integers(0, 40, base.shape)).astype(np.uint8)


def write_cv(path: Path, image: NDArray[Any]) -> Path:
    assert cv2.imwrite(str(path), image), path
    return path


def write_pil(path: Path, fmt: str, image: Image.Image | None = None, **options: object) -> Path:
    (image or Image.fromarray(gradient()[:, :, ::-1].copy())).save(path, fmt, **options)
    return path


def write_exif_jpeg(path: Path, *, original: bool = True) -> Path:
    """A JPEG whose EXIF says who made it and when (padded strings on purpose)."""
    exif = Image.Exif()
    exif[Base.Make] = "TestCam\x00\x00"
    exif[Base.Model] = "  Model X  "
    exif[Base.Software] = "authenticity-tests 1.0\n"
    exif[Base.DateTime] = "2023:01:02 03:04:05"
    if original:
        sub = exif.get_ifd(IFD.Exif)
        sub[Base.DateTimeOriginal] = "2024:05:06 07:08:09"
        sub[Base.OffsetTimeOriginal] = "+02:00"
        sub[Base.SubsecTimeOriginal] = "12"
    Image.fromarray(gradient()[:, :, ::-1].copy()).save(path, "JPEG", exif=exif)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_header(width: int, height: int) -> bytes:
    """A well-formed PNG whose IHDR claims *width* x *height* but whose IDAT is tiny."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes, version: int = 0) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + payload)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", major + b"\x00\x00\x00\x00" + b"".join(compatible))


def heic_bytes(width: int = 4032, height: int = 3024, *, brand: bytes = b"heic") -> bytes:
    """A structurally valid HEIF: ftyp, meta (hdlr + iprp/ipco with two ispe), mdat."""
    hdlr = full_box(b"hdlr", b"\x00" * 4 + b"pict" + b"\x00" * 12 + b"\x00")
    ispe_main = full_box(b"ispe", struct.pack(">II", width, height))
    ispe_thumb = full_box(b"ispe", struct.pack(">II", 320, 240))
    meta = full_box(b"meta", hdlr + box(b"iprp", box(b"ipco", ispe_thumb + ispe_main)))
    compatible = (b"mif1", brand) if brand != b"mif1" else (b"mif1",)
    return ftyp(brand, *compatible) + meta + box(b"mdat", bytes(range(256)) * 4)


def ebml_header(doctype: bytes) -> bytes:
    """An EBML header element with DocType *doctype* (all sizes one-byte vints)."""
    body = b"\x42\x86\x81\x01" + b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(body)]) + body


def write_video(path: Path, fourcc: str = "mp4v", frames: int = 10) -> Path:
    """A short real video written by OpenCV (FFmpeg picks the codec for WebM)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 10.0, (64, 48))
    assert writer.isOpened(), f"VideoWriter cannot write {path}"
    for index in range(frames):
        frame = gradient()
        cv2.rectangle(frame, (index * 5, 10), (index * 5 + 8, 20), (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def top_level_boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """``{type: (offset, size)}`` of the top-level boxes of a small MP4."""
    found: dict[str, tuple[int, int]] = {}
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        found[kind.decode("latin-1")] = (offset, size)
        if size == 0:
            break
        offset += size
    return found


def encode(fmt: str, image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()
