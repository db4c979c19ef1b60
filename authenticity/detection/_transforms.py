"""Robustness conditions (private): the everyday laundering an image meets before it reaches us.

Each is a function BGR uint8 → BGR uint8, applied to real and synthetic images alike by
``detector eval --robustness`` (and by ``bench/lofo.py``), so a drop in AUC is the
detector's fault, not a difference between the classes.

>>> ROBUSTNESS["long256_jpeg90"](np.zeros((600, 1000, 3), np.uint8)).shape
(154, 256, 3)
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["ROBUSTNESS", "Transform"]

Image = NDArray[np.uint8]
Transform = Callable[[Image], Image]


def _jpeg(quality: int) -> Transform:
    def apply(bgr: Image) -> Image:
        _, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])  # cannot fail on uint8 BGR
        return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), dtype=np.uint8)

    return apply


def _half(bgr: Image) -> Image:
    h, w = bgr.shape[:2]
    return np.asarray(cv2.resize(bgr, (max(1, round(w / 2)), max(1, round(h / 2))), interpolation=cv2.INTER_AREA))


def _double(bgr: Image) -> Image:
    """Twice the size, bicubic: the upscaling a pipeline gives an image smaller than its target."""
    h, w = bgr.shape[:2]
    return np.asarray(cv2.resize(bgr, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC))


def _blur(bgr: Image) -> Image:
    return np.asarray(cv2.GaussianBlur(bgr, (0, 0), sigmaX=1.0, sigmaY=1.0))


def _long_side_then_jpeg(side: int, quality: int, *, enlarge: bool = False) -> Transform:
    """What a platform does to every upload: shrink so the long side is at most *side*, re-encode.

    With *enlarge*, smaller images are brought up to *side* as well (bicubic), as a pipeline
    with one fixed working size does.
    """
    to_jpeg = _jpeg(quality)

    def apply(bgr: Image) -> Image:
        h, w = bgr.shape[:2]
        if max(h, w) > side or (enlarge and max(h, w) < side):
            scale = side / max(h, w)
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            bgr = np.asarray(cv2.resize(bgr, size, interpolation=interp))
        return to_jpeg(bgr)

    return apply


# Everyday laundering a synthetic image meets on its way to us (re-compression, resizing,
# smoothing); applied to real and fake images alike, so a drop in AUC is the detector's fault.
ROBUSTNESS: dict[str, Transform] = {"jpeg_q90": _jpeg(90), "jpeg_q75": _jpeg(75), "jpeg_q50": _jpeg(50),
                                    "resize_0.5": _half, "upscale_2x": _double, "blur_sigma1": _blur,
                                    "long512_jpeg90": _long_side_then_jpeg(512, 90),
                                    "long256_jpeg90": _long_side_then_jpeg(256, 90),
                                    "long128_jpeg90": _long_side_then_jpeg(128, 90),
                                    "fit512_jpeg90": _long_side_then_jpeg(512, 90, enlarge=True)}  # fmt: skip
