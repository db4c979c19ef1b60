"""Frame sampling and face crops for video scoring (OpenCV; Haar weights ship in the wheel).

>>> frames = sample_frames(Path("clip.mp4"), fps=1.0, max_frames=8)   # doctest: +SKIP
>>> [(f.index, round(f.time_s, 1), len(f.faces)) for f in frames]     # doctest: +SKIP
[(0, 0.0, 1), (30, 1.0, 1), ...]
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from authenticity.errors import MediaError
from authenticity.media import inspect_media

__all__ = ["FrameSample", "detect_faces", "sample_frames"]


@dataclass(frozen=True)
class FrameSample:
    index: int
    time_s: float
    bgr: NDArray[np.uint8]
    faces: tuple[NDArray[np.uint8], ...]


@functools.cache
def _cascade() -> cv2.CascadeClassifier:
    path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():  # pragma: no cover - the file ships inside opencv-python-headless < 5
        raise MediaError("detection.faces.unavailable", f"Haar cascade not found at {path}")
    return cascade


def detect_faces(bgr: NDArray[np.uint8], *, margin: float = 0.3, min_size: int = 32) -> tuple[NDArray[np.uint8], ...]:
    """Face crops (with a margin), largest first, at native resolution."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
    h, w = bgr.shape[:2]
    crops = []
    for x, y, fw, fh in sorted((tuple(int(v) for v in f) for f in found), key=lambda f: -f[2] * f[3])[:4]:
        mx, my = int(fw * margin), int(fh * margin)
        x0, y0, x1, y1 = max(0, x - mx), max(0, y - my), min(w, x + fw + mx), min(h, y + fh + my)
        crops.append(np.ascontiguousarray(bgr[y0:y1, x0:x1]))
    return tuple(crops)


def sample_frames(path: Path, *, fps: float = 1.0, max_frames: int = 32, max_pixels: int = 100_000_000,
                  faces: bool = True) -> list[FrameSample]:  # fmt: skip
    """Decode frames at about ``fps`` per second (at most ``max_frames``, evenly spread)."""
    if fps <= 0 or max_frames <= 0:
        raise MediaError("usage.video.sampling", "fps and max_frames must be positive")
    info = inspect_media(path, max_pixels=max_pixels)
    if info.width and info.height and info.width * info.height > max_pixels:
        raise MediaError("media.image.too_large", f"{path}: frame size {info.width}x{info.height} is too large")
    capture = cv2.VideoCapture(str(path.resolve()))
    try:
        native_fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        step = max(1, round(native_fps / fps))
        wanted = list(range(0, total, step)) if total > 0 else []
        if len(wanted) > max_frames:
            wanted = (
                [wanted[round(i * (len(wanted) - 1) / (max_frames - 1))] for i in range(max_frames)]
                if max_frames > 1
                else wanted[:1]
            )
        wanted_set = set(wanted) if wanted else None
        samples: list[FrameSample] = []
        index = 0
        while len(samples) < max_frames:
            ok = capture.grab()
            if not ok:
                break
            if (wanted_set is None and index % step == 0) or (wanted_set is not None and index in wanted_set):
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    bgr = np.ascontiguousarray(frame, dtype=np.uint8)
                    samples.append(FrameSample(index, index / native_fps, bgr, detect_faces(bgr) if faces else ()))
            index += 1
    finally:
        capture.release()
    if not samples:
        raise MediaError("media.decode.failed", f"{path}: no decodable video frames")
    return samples
