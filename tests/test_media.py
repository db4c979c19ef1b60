"""Tests for ``authenticity.media``: sniffing, hashing, decode validation, metadata.

Every sample is a real file produced by OpenCV/Pillow in ``tmp_path`` or a container
header assembled byte by byte (``tests/media_samples.py``); nothing is mocked.
"""

from __future__ import annotations

import doctest
import hashlib
import io
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

import authenticity.media as media
from authenticity.errors import MediaError, UsageError
from authenticity.media import (
    CaptureMetadata,
    MediaType,
    inspect_media,
    load_image_bgr,
    parse_digest,
    read_capture_metadata,
    sha256_bytes,
    sha256_file,
    sniff_bytes,
    sniff_file,
)
from authenticity.media._containers import walk_bmff
from tests import media_samples as ms

PILLOW_HEIF = media._decode.pillow_can_open(MediaType.HEIC)  # pillow-heif plugin registered
PILLOW_AVIF = media._decode.pillow_can_open(MediaType.AVIF)


def expect(code: str, call: Callable[[], object]) -> MediaError:
    with pytest.raises(MediaError) as info:
        call()
    assert info.value.code == code, info.value.diagnostics()
    assert "\n" not in info.value.message
    return info.value


@pytest.fixture
def mp4(tmp_path: Path) -> Path:
    return ms.write_video(tmp_path / "clip.mp4")


# --- sniffing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "writer", "expected"),
    [
        ("a.jpg", lambda p: ms.write_cv(p, ms.gradient()), MediaType.JPEG),
        ("a.png", lambda p: ms.write_cv(p, ms.gradient()), MediaType.PNG),
        ("a.webp", lambda p: ms.write_cv(p, ms.gradient()), MediaType.WEBP),
        ("a.gif", lambda p: ms.write_pil(p, "GIF"), MediaType.GIF),
        ("a.tiff", lambda p: ms.write_pil(p, "TIFF", compression="tiff_lzw"), MediaType.TIFF),
        ("a.mp4", ms.write_video, MediaType.MP4),
        ("a.mov", ms.write_video, MediaType.MOV),
        ("a.webm", lambda p: ms.write_video(p, "VP90"), MediaType.WEBM),
    ],
)
def test_sniff_real_files(tmp_path: Path, name: str, writer: Callable[[Path], Path], expected: MediaType) -> None:
    path = writer(tmp_path / name)
    assert sniff_file(path) is expected
    # The name plays no part: the same bytes under a misleading name sniff the same.
    renamed = path.rename(tmp_path / "misleading.txt")
    assert sniff_file(renamed) is expected


@pytest.mark.skipif(not PILLOW_AVIF, reason="Pillow built without AVIF")
def test_sniff_real_avif(tmp_path: Path) -> None:
    assert sniff_file(ms.write_pil(tmp_path / "a.avif", "AVIF")) is MediaType.AVIF


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (ms.ftyp(b"heic", b"mif1", b"heic"), MediaType.HEIC),
        (ms.ftyp(b"heix", b"mif1"), MediaType.HEIC),
        (ms.ftyp(b"mif1", b"mif1", b"heic"), MediaType.HEIC),
        (ms.ftyp(b"mif1", b"miaf"), MediaType.HEIC),  # generic HEIF
        (ms.ftyp(b"msf1", b"msf1", b"hevc"), MediaType.HEIC),
        (ms.ftyp(b"avif", b"mif1", b"miaf"), MediaType.AVIF),
        (ms.ftyp(b"mif1", b"avif", b"mif1"), MediaType.AVIF),
        (ms.ftyp(b"avis", b"msf1"), MediaType.AVIF),
        (ms.ftyp(b"qt  ", b"qt  "), MediaType.MOV),
        (ms.ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), MediaType.MP4),
        (ms.ftyp(b"mp42", b"mp42", b"isom"), MediaType.MP4),
        (ms.ftyp(b"M4V ", b"M4V "), MediaType.MP4),
        (ms.ftyp(b"dash", b"iso6"), MediaType.MP4),
        (ms.ftyp(b"zzzz", b"zzzz", b"iso5"), MediaType.MP4),  # unknown major, known compatible
        (ms.ftyp(b"M4A ", b"M4A "), None),  # audio only
        (ms.ftyp(b"crx ", b"crx "), None),  # Canon CR3 raw
        (b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat", MediaType.MOV),  # pre-ftyp QuickTime
        (ms.ebml_header(b"webm") + b"\x18\x53\x80\x67\x01", MediaType.WEBM),
        (ms.ebml_header(b"matroska"), MediaType.WEBM),  # same container: treated as WebM
        (ms.ebml_header(b"other"), None),
        (b"\xff\xd8\xff\xdb" + bytes(16), MediaType.JPEG),
        (b"\x89PNG\r\n\x1a\n", MediaType.PNG),
        (b"GIF87a\x01\x00\x01\x00", MediaType.GIF),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", MediaType.WEBP),
        (b"RIFF\x10\x00\x00\x00AVI LIST", None),
        (b"II*\x00\x08\x00\x00\x00", MediaType.TIFF),
        (b"MM\x00*\x00\x00\x00\x08", MediaType.TIFF),
        (b"II+\x00\x08\x00\x00\x00", MediaType.TIFF),  # BigTIFF
        (b"hello", None),
        (b"", None),
        (b"\x00\x00\x00\x04ftyp", None),
        (b"%PDF-1.7\n", None),
    ],
)
def test_sniff_bytes(head: bytes, expected: MediaType | None) -> None:
    assert sniff_bytes(head) is expected


def test_media_type_enum() -> None:
    assert isinstance(MediaType.JPEG, str) and MediaType.JPEG.value == "image/jpeg"
    assert str(MediaType.MOV) == "video/quicktime" and f"{MediaType.PNG}" == "image/png"
    assert MediaType("video/webm") is MediaType.WEBM
    assert {t for t in MediaType if t.is_video} == {MediaType.MP4, MediaType.MOV, MediaType.WEBM}


def test_sniff_file_reads_only_the_head(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(10 << 20))
    assert sniff_file(path) is MediaType.PNG


# --- file and type errors ---------------------------------------------------------------

ENTRY_POINTS: list[Callable[[Path], object]] = [
    sniff_file,
    inspect_media,
    load_image_bgr,
    sha256_file,
    lambda p: read_capture_metadata(p, MediaType.JPEG),
]


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_missing_path(tmp_path: Path, call: Callable[[Path], object]) -> None:
    error = expect("media.file.not_found", lambda: call(tmp_path / "nope.jpg"))
    assert "nope.jpg" in error.message
    expect("media.file.not_found", lambda: call(tmp_path / "nope" / "deeper.jpg"))


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_directory(tmp_path: Path, call: Callable[[Path], object]) -> None:
    error = expect("media.file.is_directory", lambda: call(tmp_path))
    assert str(tmp_path) in error.message


@pytest.mark.parametrize("call", [sniff_file, inspect_media, load_image_bgr, ENTRY_POINTS[-1]])
def test_empty_file(tmp_path: Path, call: Callable[[Path], object]) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    error = expect("media.file.empty", lambda: call(empty))
    assert "empty.jpg" in error.message


def test_fifo_is_unreadable_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    for call in ENTRY_POINTS:
        expect("media.file.unreadable", lambda call=call: call(fifo))  # type: ignore[misc]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied(tmp_path: Path) -> None:
    locked = ms.write_cv(tmp_path / "locked.png", ms.gradient())
    locked.chmod(0)
    try:
        expect("media.file.unreadable", lambda: sniff_file(locked))
        expect("media.file.unreadable", lambda: sha256_file(locked))
    finally:
        locked.chmod(0o644)


@pytest.mark.parametrize(
    "content",
    [b"hello", np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes(), b"RIFF....AVI "],
    ids=["text", "random", "avi"],
)
def test_unsupported_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file.jpg"
    path.write_bytes(content)
    for call in (sniff_file, inspect_media, load_image_bgr):
        error = expect("media.type.unsupported", lambda call=call: call(path))  # type: ignore[misc]
        assert "file.jpg" in error.message


def test_load_image_bgr_refuses_video(mp4: Path) -> None:
    expect("media.type.unsupported", lambda: load_image_bgr(mp4))


# --- image validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "writer", "expected"),
    [
        ("a.jpg", lambda p: ms.write_cv(p, ms.gradient()), MediaType.JPEG),
        ("a.png", lambda p: ms.write_cv(p, ms.gradient()), MediaType.PNG),
        ("a.webp", lambda p: ms.write_cv(p, ms.gradient()), MediaType.WEBP),
        ("lossless.webp", lambda p: ms.write_pil(p, "WEBP", lossless=True), MediaType.WEBP),
        ("a.gif", lambda p: ms.write_pil(p, "GIF"), MediaType.GIF),
        ("a.tiff", lambda p: ms.write_pil(p, "TIFF", compression="tiff_deflate"), MediaType.TIFF),
        ("raw.tiff", lambda p: ms.write_pil(p, "TIFF"), MediaType.TIFF),
    ],
)
def test_inspect_valid_images(tmp_path: Path, name: str, writer: Callable[[Path], Path], expected: MediaType) -> None:
    path = writer(tmp_path / name)
    info = inspect_media(path)
    assert info == media.MediaInfo(path, expected, path.stat().st_size, 64, 48, None)


@pytest.mark.skipif(not PILLOW_AVIF, reason="Pillow built without AVIF")
def test_inspect_avif_real_and_truncated(tmp_path: Path) -> None:
    path = ms.write_pil(tmp_path / "a.avif", "AVIF")
    info = inspect_media(path)
    assert (info.media_type, info.width, info.height) == (MediaType.AVIF, 64, 48)
    assert load_image_bgr(path).shape == (48, 64, 3)
    cut = tmp_path / "cut.avif"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    expect("media.decode.failed", lambda: inspect_media(cut))
    # Right box structure, garbage AV1 payload: Pillow has a decoder, so it must decode.
    fake = tmp_path / "fake.avif"
    fake.write_bytes(ms.heic_bytes(brand=b"avif"))
    expect("media.decode.failed", lambda: inspect_media(fake))


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = ms.write_cv(tmp_path / "full.jpg", ms.noisy()).read_bytes()
    for name, cut in [("half.jpg", len(data) // 2), ("no_eoi.jpg", len(data) - 2)]:
        path = tmp_path / name
        path.write_bytes(data[:cut])
        assert sniff_file(path) is MediaType.JPEG
        error = expect("media.decode.failed", lambda path=path: inspect_media(path))  # type: ignore[misc]
        assert name in error.message
        expect("media.decode.failed", lambda path=path: load_image_bgr(path))  # type: ignore[misc]


def test_truncated_png(tmp_path: Path) -> None:
    data = ms.write_cv(tmp_path / "full.png", ms.noisy()).read_bytes()
    path = tmp_path / "half.png"
    path.write_bytes(data[: len(data) // 2])
    expect("media.decode.failed", lambda: inspect_media(path))
    expect("media.decode.failed", lambda: load_image_bgr(path))


def test_png_without_iend_caught_by_opencv(tmp_path: Path) -> None:
    # Pillow stops after the last IDAT and accepts this file; OpenCV's libpng reader
    # wants the whole stream, so the second decoder is what catches it.
    data = ms.write_cv(tmp_path / "full.png", ms.noisy()).read_bytes()
    path = tmp_path / "no_iend.png"
    path.write_bytes(data[:-12])
    with Image.open(path) as img:
        img.load()
    error = expect("media.decode.failed", lambda: inspect_media(path))
    assert "OpenCV" in error.message


def test_truncated_gif_webp_tiff(tmp_path: Path) -> None:
    for name, fmt in [("a.gif", "GIF"), ("a.webp", "WEBP"), ("a.tiff", "TIFF")]:
        data = ms.encode(fmt, Image.fromarray(ms.noisy()))
        path = tmp_path / name
        path.write_bytes(data[: len(data) // 2])
        expect("media.decode.failed", lambda path=path: inspect_media(path))  # type: ignore[misc]


def test_corrupt_jpeg_scan_data(tmp_path: Path) -> None:
    data = bytearray(ms.write_cv(tmp_path / "full.jpg", ms.noisy()).read_bytes())
    scan = data.index(b"\xff\xda") + 20  # keep every header segment, garble the scan
    data[scan:-2] = np.random.default_rng(3).integers(0, 256, len(data) - 2 - scan, dtype=np.uint8).tobytes()
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    assert sniff_file(path) is MediaType.JPEG
    expect("media.decode.failed", lambda: inspect_media(path))


def test_jpeg_with_garbled_headers(tmp_path: Path) -> None:
    data = bytearray(ms.write_cv(tmp_path / "full.jpg", ms.gradient()).read_bytes())
    data[4:] = bytes(len(data) - 4)  # SOI and APP marker survive, the rest is zeros
    path = tmp_path / "zeros.jpg"
    path.write_bytes(bytes(data))
    expect("media.decode.failed", lambda: inspect_media(path))


def test_png_bomb_refused_from_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(ms.png_with_header(50_000, 50_000))
    assert path.stat().st_size < 200
    started = time.perf_counter()
    expect("media.image.too_large", lambda: inspect_media(path))
    expect("media.image.too_large", lambda: load_image_bgr(path))
    expect("media.image.too_large", lambda: read_capture_metadata(path, MediaType.PNG))
    assert time.perf_counter() - started < 2.0  # 7.5 GB of pixels would take far longer


def test_own_pixel_limit_applies_without_pillow_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's guard off: ours must hold
    path = tmp_path / "bomb.png"
    path.write_bytes(ms.png_with_header(50_000, 50_000))
    error = expect("media.image.too_large", lambda: inspect_media(path))
    assert "50000x50000" in error.message
    assert "100000000" in error.message


def test_default_limit_below_pillow_error_threshold(tmp_path: Path) -> None:
    path = tmp_path / "108mp.png"
    path.write_bytes(ms.png_with_header(12_000, 9_000))  # 108 Mpx: Pillow only warns
    with pytest.warns(Image.DecompressionBombWarning):
        error = expect("media.image.too_large", lambda: inspect_media(path))
    assert "12000x9000" in error.message


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    path = ms.write_cv(tmp_path / "a.png", ms.gradient())
    assert inspect_media(path, max_pixels=64 * 48).width == 64
    expect("media.image.too_large", lambda: inspect_media(path, max_pixels=64 * 48 - 1))
    expect("media.image.too_large", lambda: load_image_bgr(path, max_pixels=1000))
    with pytest.raises(ValueError):
        inspect_media(path, max_pixels=0)


def test_pillow_truncation_flag_untouched() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- HEIC (no decoder plugin): container-level validation --------------------------------


@pytest.mark.skipif(PILLOW_HEIF, reason="a HEIF plugin would decode (and reject) the fake payload")
def test_heic_header_level_validation(tmp_path: Path) -> None:
    path = tmp_path / "a.heic"
    path.write_bytes(ms.heic_bytes(4032, 3024))
    info = inspect_media(path)
    assert (info.media_type, info.width, info.height, info.frame_count) == (MediaType.HEIC, 4032, 3024, None)
    assert read_capture_metadata(path, MediaType.HEIC) == CaptureMetadata()
    expect("media.type.unsupported", lambda: load_image_bgr(path))
    cut = tmp_path / "cut.heic"
    cut.write_bytes(path.read_bytes()[:-100])  # mdat now runs past end of file
    error = expect("media.decode.failed", lambda: inspect_media(cut))
    assert "mdat" in error.message
    big = tmp_path / "big.heic"
    big.write_bytes(ms.heic_bytes(20_000, 20_000))
    expect("media.image.too_large", lambda: inspect_media(big))
    no_meta = tmp_path / "nometa.heic"
    no_meta.write_bytes(ms.ftyp(b"heic", b"mif1") + ms.box(b"mdat", b"x" * 64))
    expect("media.decode.failed", lambda: inspect_media(no_meta))


def test_bmff_walk_sizes() -> None:
    data = ms.ftyp(b"isom") + struct.pack(">I4sQ", 1, b"free", 24) + bytes(8) + struct.pack(">I4s", 0, b"mdat") + b"xyz"
    boxes = walk_bmff(io.BytesIO(data), len(data), Path("x.mp4"))
    assert [(b.type, b.size, b.header_size) for b in boxes] == [("ftyp", 16, 8), ("free", 24, 16), ("mdat", 11, 8)]
    padded = data[:-11] + bytes(4)  # zero padding shorter than a box header is tolerated
    assert len(walk_bmff(io.BytesIO(padded), len(padded), Path("x.mp4"))) == 2
    for bad in (data[:-11] + b"\x00\x00\x00\x09mdat", data[:-11] + b"\x00\x00\x00\x04mdat", data[:-11] + b"ab"):
        with pytest.raises(MediaError) as info:
            walk_bmff(io.BytesIO(bad), len(bad), Path("x.mp4"))
        assert info.value.code == "media.decode.failed"


# --- video validation -------------------------------------------------------------------


def test_inspect_real_mp4(mp4: Path) -> None:
    info = inspect_media(mp4)
    assert info == media.MediaInfo(mp4, MediaType.MP4, mp4.stat().st_size, 64, 48, 10)


@pytest.mark.parametrize(
    ("name", "fourcc", "expected"), [("a.mov", "mp4v", MediaType.MOV), ("a.webm", "VP90", MediaType.WEBM)]
)
def test_inspect_real_mov_and_webm(tmp_path: Path, name: str, fourcc: str, expected: MediaType) -> None:
    path = ms.write_video(tmp_path / name, fourcc)
    info = inspect_media(path)
    assert (info.media_type, info.width, info.height, info.frame_count) == (expected, 64, 48, 10)


def test_truncated_mp4(tmp_path: Path, mp4: Path) -> None:
    data = mp4.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert sniff_file(cut) is MediaType.MP4
    error = expect("media.decode.failed", lambda: inspect_media(cut))
    assert "truncated" in error.message
    offset, _ = ms.top_level_boxes(data)["moov"]
    no_moov = tmp_path / "nomoov.mp4"
    no_moov.write_bytes(data[:offset])  # cut exactly at a box boundary
    expect("media.decode.failed", lambda: inspect_media(no_moov))


def test_mp4_last_box_size_zero_means_to_end(tmp_path: Path, mp4: Path) -> None:
    data = bytearray(mp4.read_bytes())
    offset, _ = ms.top_level_boxes(bytes(data))["moov"]
    assert offset + ms.top_level_boxes(bytes(data))["moov"][1] == len(data)  # moov is last
    data[offset : offset + 4] = bytes(4)
    path = tmp_path / "size0.mp4"
    path.write_bytes(bytes(data))
    assert inspect_media(path).frame_count == 10


def test_mp4_whose_frames_do_not_decode(tmp_path: Path, mp4: Path) -> None:
    data = bytearray(mp4.read_bytes())
    offset, size = ms.top_level_boxes(bytes(data))["mdat"]
    data[offset + 8 : offset + size] = bytes(size - 8)  # container intact, codec data zeroed
    path = tmp_path / "zeroed.mp4"
    path.write_bytes(bytes(data))
    error = expect("media.decode.failed", lambda: inspect_media(path))
    assert "frame" in error.message


def test_truncated_webm(tmp_path: Path) -> None:
    data = ms.write_video(tmp_path / "a.webm", "VP90").read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: int(len(data) * 0.9)])  # OpenCV alone still decodes a frame here
    error = expect("media.decode.failed", lambda: inspect_media(cut))
    assert "Segment" in error.message


# --- hashing ----------------------------------------------------------------------------


def test_sha256_file_streams(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 256, 5 * 1024 * 1024 + 123, dtype=np.uint8).tobytes()
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    calls: list[int] = []
    assert sha256_file(path, progress=calls.append) == expected
    assert sum(calls) == len(data) and len(calls) == 6
    calls.clear()
    assert sha256_file(path, chunk_size=64 * 1024, progress=calls.append) == expected
    assert sum(calls) == len(data) and max(calls) == 64 * 1024
    assert sha256_bytes(data) == expected
    with pytest.raises(ValueError):
        sha256_file(path, chunk_size=0)


def test_sha256_of_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_file(path) == sha256_bytes(b"") == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_parse_digest() -> None:
    raw = hashlib.sha256(b"x").digest()
    assert parse_digest("sha256:" + raw.hex()) == raw
    assert parse_digest("sha256:" + raw.hex().upper()) == raw
    assert parse_digest(sha256_bytes(b"x")) == raw
    hexed = raw.hex()
    bad_forms = ["", hexed, "sha256:" + hexed[:-1], "sha256:" + hexed + "\n", "SHA256:" + hexed, "sha512:" + hexed]
    bad_forms += ["sha256:" + "g" * 64, " sha256:" + hexed, "sha256:" + "ab" * 500, "sha256: " + hexed]
    for bad in bad_forms:
        with pytest.raises(UsageError) as info:
            parse_digest(bad)
        assert info.value.code == "usage.digest.invalid"
        assert len(info.value.message) < 200


# --- metadata ---------------------------------------------------------------------------


def test_exif_capture_metadata(tmp_path: Path) -> None:
    path = ms.write_exif_jpeg(tmp_path / "exif.jpg")
    meta = read_capture_metadata(path, MediaType.JPEG)
    assert meta == CaptureMetadata(
        captured_at="2024-05-06T07:08:09.120000+02:00",
        device_make="TestCam",
        device_model="Model X",
        software="authenticity-tests 1.0",
        width=64,
        height=48,
    )
    assert meta.to_dict()["device_make"] == "TestCam"
    assert inspect_media(path).media_type is MediaType.JPEG


def test_exif_falls_back_to_datetime(tmp_path: Path) -> None:
    path = ms.write_exif_jpeg(tmp_path / "exif.jpg", original=False)
    assert read_capture_metadata(path, MediaType.JPEG).captured_at == "2023-01-02T03:04:05"


def test_metadata_without_exif(tmp_path: Path) -> None:
    for name in ("plain.png", "plain.jpg", "plain.webp"):
        path = ms.write_cv(tmp_path / name, ms.gradient())
        meta = read_capture_metadata(path, sniff_file(path))
        assert meta == CaptureMetadata(width=64, height=48)
        assert meta.to_dict() == {"width": 64, "height": 48}
    gif = ms.write_pil(tmp_path / "a.gif", "GIF")
    assert read_capture_metadata(gif, MediaType.GIF).to_dict() == {"width": 64, "height": 48}


def test_exif_placeholder_dates_are_ignored(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0132] = "0000:00:00 00:00:00"
    exif[0x010F] = "\x00\x00  "
    path = tmp_path / "blank.jpg"
    Image.new("RGB", (8, 8)).save(path, "JPEG", exif=exif)
    assert read_capture_metadata(path, MediaType.JPEG) == CaptureMetadata(width=8, height=8)


def test_video_metadata(mp4: Path) -> None:
    assert read_capture_metadata(mp4, MediaType.MP4).to_dict() == {"width": 64, "height": 48}


# --- load_image_bgr ---------------------------------------------------------------------


def test_load_color_jpeg_and_png(tmp_path: Path) -> None:
    image = ms.gradient()
    png = load_image_bgr(ms.write_cv(tmp_path / "a.png", image))
    assert png.dtype == np.uint8 and png.shape == (48, 64, 3)
    assert np.array_equal(png, image)
    jpeg = load_image_bgr(ms.write_cv(tmp_path / "a.jpg", image))
    assert jpeg.shape == (48, 64, 3) and jpeg.dtype == np.uint8
    assert np.abs(jpeg.astype(int) - image.astype(int)).mean() < 4


def test_load_grayscale(tmp_path: Path) -> None:
    gray = cv2.cvtColor(ms.gradient(), cv2.COLOR_BGR2GRAY)
    out = load_image_bgr(ms.write_cv(tmp_path / "gray.png", gray))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert all(np.array_equal(out[:, :, c], gray) for c in range(3))


def test_load_rgba_drops_alpha(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    Image.new("RGBA", (10, 6), (255, 0, 0, 64)).save(path)
    out = load_image_bgr(path)
    assert out.shape == (6, 10, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [0, 0, 255]  # red, in BGR order


def test_load_16bit(tmp_path: Path) -> None:
    gray16 = np.array([[0, 257, 65535, 25700]], dtype=np.uint16).repeat(4, axis=0)
    out = load_image_bgr(ms.write_cv(tmp_path / "gray16.png", gray16))
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [0, 1, 255, 100]
    color16 = ms.gradient().astype(np.uint16) * 257
    out = load_image_bgr(ms.write_cv(tmp_path / "color16.png", color16))
    assert np.array_equal(out, ms.gradient())
    tiff16 = load_image_bgr(ms.write_cv(tmp_path / "color16.tiff", color16))
    assert np.array_equal(tiff16, ms.gradient())


def test_load_palette_gif_and_tiff(tmp_path: Path) -> None:
    assert load_image_bgr(ms.write_pil(tmp_path / "a.gif", "GIF")).shape == (48, 64, 3)
    assert load_image_bgr(ms.write_pil(tmp_path / "a.tiff", "TIFF")).shape == (48, 64, 3)
    one_bit = ms.write_pil(tmp_path / "bw.png", "PNG", Image.new("1", (9, 5), 1))
    out = load_image_bgr(one_bit)
    assert out.shape == (5, 9, 3) and int(out.min()) == 255


# --- API surface ------------------------------------------------------------------------


def test_public_api_and_doctests() -> None:
    assert set(media.__all__) >= {
        "MediaType", "sniff_bytes", "sniff_file", "sha256_file", "sha256_bytes", "parse_digest",
        "MediaInfo", "inspect_media", "load_image_bgr", "CaptureMetadata", "read_capture_metadata",
    }  # fmt: skip
    from authenticity.media import hashing, inspect, metadata, sniff

    for module in (media, sniff, hashing, inspect, metadata):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
