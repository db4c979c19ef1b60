"""PDQ perceptual hashes of images and video frames, and vPDQ-style video comparison.

PDQ (Meta's 256-bit perceptual hash) survives re-encoding, resizing and mild edits:
two hashes of the same picture are a small Hamming distance apart, unrelated pictures
about 128 apart. ``MATCH_DISTANCE`` (31) and ``MIN_QUALITY`` (50) are the thresholds
Meta publishes for PDQ; hashes of flat, featureless pictures (quality below 50) match
almost anything and are not to be trusted.

>>> h = PdqHash.from_hex("d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22", 100)
>>> h.distance(PdqHash.from_hex("d8f8f0cce0f4e84f0637022a028f67f0b36e2ed596623e1d33e6b39c4e9c9b22", 100))
4
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pdqhash
from numpy.typing import NDArray

from authenticity.errors import MediaError, UsageError
from authenticity.media._decode import check_max_pixels, one_line, to_bgr8
from authenticity.media._files import display_path
from authenticity.media._video import open_capture, probe_video
from authenticity.media.inspect import DEFAULT_MAX_PIXELS, load_image_bgr
from authenticity.media.sniff import MediaType, sniff_file

__all__ = [
    "DEFAULT_FRAMES_PER_SECOND",
    "DEFAULT_MAX_FRAMES",
    "HASH_BYTES",
    "MATCH_DISTANCE",
    "MIN_QUALITY",
    "VIDEO_MATCH_FRACTION",
    "PdqHash",
    "VideoMatch",
    "hamming_distances",
    "pdq_file",
    "pdq_image",
    "video_match",
]

HASH_BYTES = 32
"""A PDQ hash is 256 bits."""
MATCH_DISTANCE = 31
"""Hamming distance at or below which two PDQ hashes are taken as the same picture."""
MIN_QUALITY = 50
"""Hashes of lower quality are ignored when comparing videos."""
VIDEO_MATCH_FRACTION = 0.8
"""Share of frames that must match, in each direction, for two videos to match."""
DEFAULT_FRAMES_PER_SECOND = 1.0
DEFAULT_MAX_FRAMES = 120

# The reference implementations shrink a picture to fit 512x512 before hashing. Doing
# the same keeps our hashes within a bit or two of theirs (full-resolution hashing
# drifts by up to ~12 bits on large photos) and bounds the work per picture.
_WORKING_SIZE = 512
# OpenCV reports 0 or NaN frames per second for some containers; sample as if 30.
_FALLBACK_FPS = 30.0


@dataclass(frozen=True)
class PdqHash:
    """A 256-bit PDQ hash and the quality (0-100) the hasher reported for it.

    Bit order: ``bits`` is the hash as a 256-bit big-endian integer, so bit *k* of
    ``int.from_bytes(bits, "big")`` is PDQ bit *k* (DCT coefficient row ``k // 16``,
    column ``k % 16``, set when above the median) and ``bits[0]`` holds bits 255..248.
    ``hex`` is therefore the 64-digit form that Meta's PDQ tools print.

    >>> PdqHash(bytes(31) + b"\\x05", 90).distance(PdqHash(bytes(32), 90))
    2
    """

    bits: bytes
    quality: int

    def __post_init__(self) -> None:
        if not isinstance(self.bits, bytes) or len(self.bits) != HASH_BYTES:
            raise UsageError("usage.pdq.hash", f"a PDQ hash is {HASH_BYTES} bytes, got {self.bits!r:.80}")
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or not 0 <= self.quality <= 100:
            raise UsageError("usage.pdq.quality", f"PDQ quality is an int from 0 to 100, got {self.quality!r}")

    @property
    def hex(self) -> str:
        """The 64 lowercase hex digits of the hash.

        >>> PdqHash(bytes(32), 0).hex == "0" * 64
        True
        """
        return self.bits.hex()

    @classmethod
    def from_hex(cls, text: str, quality: int) -> PdqHash:
        """Parse 64 hex digits (either case), as printed by :attr:`hex` or Meta's tools.

        >>> PdqHash.from_hex("F" * 64, 100).bits == b"\\xff" * 32
        True
        """
        if not isinstance(text, str) or len(text) != 2 * HASH_BYTES or not all(c in _HEX for c in text):
            raise UsageError("usage.pdq.hash", f"a PDQ hash is {2 * HASH_BYTES} hex digits, got {text!r:.80}")
        return cls(bytes.fromhex(text), quality)

    def distance(self, other: PdqHash) -> int:
        """Hamming distance (number of differing bits, 0..256) to *other*.

        >>> PdqHash(b"\\xff" * 32, 100).distance(PdqHash(bytes(32), 100))
        256
        """
        return (int.from_bytes(self.bits, "big") ^ int.from_bytes(other.bits, "big")).bit_count()


_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class VideoMatch:
    """Outcome of :func:`video_match`.

    ``query_frames`` / ``original_frames`` count the distinct hashes of quality at least
    ``MIN_QUALITY`` that took part; a fraction is 0.0 when its side has none.
    """

    query_fraction: float
    original_fraction: float
    query_frames: int
    original_frames: int
    matched: bool


def hamming_distances(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.int32]:
    """Bitwise Hamming distances between hashes stored as rows of 32 uint8, broadcast like ``a ^ b``.

    >>> hamming_distances(np.zeros((2, 32), np.uint8), np.full(32, 3, np.uint8)).tolist()
    [64, 64]
    """
    diff = np.ascontiguousarray(np.bitwise_xor(a, b))
    if diff.shape[-1:] != (HASH_BYTES,) or diff.dtype != np.uint8:
        raise UsageError("usage.pdq.hash", f"expected rows of {HASH_BYTES} uint8, got {diff.dtype} {diff.shape}")
    # numpy >= 2 has a popcount instruction per 64-bit word; numpy 1.26 (pyproject's floor) gets a byte table.
    per_part = np.bitwise_count(diff.view(np.uint64)) if hasattr(np, "bitwise_count") else _POPCOUNT[diff]
    # Column by column: numpy's sum over a short last axis is about twice as slow.
    counts = per_part[..., 0].astype(np.int32)
    for part in range(1, per_part.shape[-1]):
        counts += per_part[..., part]
    return counts


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def pdq_image(bgr: NDArray[Any]) -> PdqHash:
    """PDQ hash of a decoded picture (as :func:`authenticity.media.load_image_bgr` returns).

    Also takes gray ``HxW``, ``HxWx1``, BGRA, 16-bit and float (0..1) arrays: they are
    normalised to 8-bit BGR first (alpha dropped). Pictures larger than 512 pixels on a
    side are shrunk to fit 512x512 (area interpolation, aspect kept) before hashing.
    Raises ``usage.pdq.image`` for anything that is not such an array.

    >>> pdq_image(np.zeros((64, 64, 3), np.uint8)).quality
    0
    """
    pixels = _as_bgr8(bgr)
    height, width = pixels.shape[:2]
    if max(height, width) > _WORKING_SIZE:
        scale = _WORKING_SIZE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    vector, quality = pdqhash.compute(np.ascontiguousarray(pixels[:, :, ::-1]))  # it wants RGB
    # pdqhash lists bit 255 first, so packing most-significant-bit first gives the big-endian bytes.
    bits = np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes()
    return PdqHash(bits, int(quality))


def _as_bgr8(array: object) -> NDArray[np.uint8]:
    if not isinstance(array, np.ndarray) or array.ndim not in (2, 3) or array.size == 0:
        shape = getattr(array, "shape", None)
        raise UsageError("usage.pdq.image", f"expected a non-empty HxW or HxWxC array, got {type(array).__name__} "
                                            f"of shape {shape}")  # fmt: skip
    if array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4):
        raise UsageError("usage.pdq.image", f"expected 1 to 4 channels, got {array.shape[2]}")
    try:
        return to_bgr8(array)
    except ValueError as exc:  # dtype it cannot scale (complex, object, strings)
        raise UsageError("usage.pdq.image", one_line(exc)) from exc


def pdq_file(
    path: Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    frames_per_second: float = DEFAULT_FRAMES_PER_SECOND,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> list[PdqHash]:
    """PDQ hashes of the image or video at *path*: one for an image, one per sampled frame for a video.

    An image is decoded with :func:`authenticity.media.load_image_bgr` (same checks and
    codes). A video's container is checked as by :func:`authenticity.media.inspect_media`,
    then frames are read in order and one is hashed every ``1 / frames_per_second``
    seconds of nominal frame time (frame index / container fps), first frame included,
    until *max_frames* are hashed or the stream ends. Frame time comes from the index,
    not the demuxer's timestamps, which some containers leave at zero.

    Raises :class:`MediaError` (``media.file.*``, ``media.type.unsupported``,
    ``media.image.too_large`` - also for a video frame over *max_pixels* -, and
    ``media.decode.failed``, also when no video frame decodes) and ``usage.pdq.sampling``
    for a non-positive rate or frame cap.

    >>> [h.hex for h in pdq_file(Path("clip.mp4"), frames_per_second=0.5)]  # doctest: +SKIP
    ['e271017837246aac...', 'c0f11178372c6aac...']
    """
    check_max_pixels(max_pixels)
    rate_ok = isinstance(frames_per_second, int | float) and not isinstance(frames_per_second, bool)
    if not rate_ok or not math.isfinite(frames_per_second) or frames_per_second <= 0:
        raise UsageError("usage.pdq.sampling", f"frames_per_second must be > 0, got {frames_per_second!r}")
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames <= 0:
        raise UsageError("usage.pdq.sampling", f"max_frames must be a positive int, got {max_frames!r}")
    path = Path(path)
    media_type = sniff_file(path)
    if not media_type.is_video:
        return [pdq_image(load_image_bgr(path, max_pixels=max_pixels))]
    return _video_hashes(path, media_type, max_pixels, float(frames_per_second), max_frames)


def _check_frame(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise MediaError(
            "media.image.too_large",
            f"{display_path(path)}: video frame {width}x{height} = {width * height} pixels exceeds "
            f"the limit of {max_pixels}",
        )


def _video_hashes(path: Path, media_type: MediaType, max_pixels: int, rate: float, max_frames: int) -> list[PdqHash]:
    width, height, _ = probe_video(path, media_type)  # container structure + first frame
    _check_frame(path, width, height, max_pixels)
    capture = open_capture(path)
    hashes: list[PdqHash] = []
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        step = (fps if math.isfinite(fps) and fps > 0 else _FALLBACK_FPS) / rate  # frames between samples
        index, next_pick = 0, 0.0
        # grab() demuxes and decodes without the colour conversion; only sampled frames pay for retrieve().
        while len(hashes) < max_frames and capture.grab():
            if index + 1e-9 >= next_pick:  # the epsilon absorbs rounding in index / step
                ok, frame = capture.retrieve()
                if ok and frame is not None and frame.size:
                    _check_frame(path, int(frame.shape[1]), int(frame.shape[0]), max_pixels)
                    hashes.append(pdq_image(frame))
                next_pick = (math.floor(index / step + 1e-9) + 1) * step  # arithmetic: step may be tiny
            index += 1
    except cv2.error as exc:
        detail = f"video does not decode ({one_line(exc)})"
        raise MediaError("media.decode.failed", f"{display_path(path)}: {detail}") from exc
    finally:
        capture.release()
    if not hashes:
        raise MediaError("media.decode.failed", f"{display_path(path)}: no video frame decodes")
    return hashes


def video_match(query: Sequence[PdqHash], original: Sequence[PdqHash]) -> VideoMatch:
    """Compare two videos' frame hashes the way vPDQ does (an unordered bag of frames).

    Both sides keep only distinct hashes of quality at least ``MIN_QUALITY``. The query
    fraction is the share of the query's hashes within ``MATCH_DISTANCE`` of some
    original hash; the original fraction is the share of the original's hashes within
    ``MATCH_DISTANCE`` of some query hash (vPDQ's "compared" percentage). vPDQ's
    suggested thresholds are 80% for the compared side and 0% for the query; we require
    ``VIDEO_MATCH_FRACTION`` (80%) on both, so a clip cut from a longer original, or an
    original padded with other footage, does not count as the same video.

    >>> frames = [PdqHash.from_hex("d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22", 100)]
    >>> video_match(frames, frames).matched
    True
    """
    q, o = _distinct_good(query), _distinct_good(original)
    if len(q) == 0 or len(o) == 0:
        return VideoMatch(0.0, 0.0, len(q), len(o), False)
    # Every pair at once: a few hundred frames a side is a few megabytes.
    pairs = hamming_distances(q[:, None, :], o[None, :, :]) <= MATCH_DISTANCE
    query_fraction = float(pairs.any(axis=1).mean())
    original_fraction = float(pairs.any(axis=0).mean())
    matched = query_fraction >= VIDEO_MATCH_FRACTION and original_fraction >= VIDEO_MATCH_FRACTION
    return VideoMatch(query_fraction, original_fraction, len(q), len(o), matched)


def _distinct_good(hashes: Sequence[PdqHash]) -> NDArray[np.uint8]:
    kept = {h.bits for h in hashes if h.quality >= MIN_QUALITY}
    if not kept:
        return np.zeros((0, HASH_BYTES), np.uint8)
    return np.frombuffer(b"".join(sorted(kept)), np.uint8).reshape(-1, HASH_BYTES)
