"""Spotting an enlarged image, so that it can be scored at the size it had before.

The network reads missing fine detail as a sign of synthesis, and interpolation removes
fine detail: a real photo doubled in size is flagged far more often than the photo itself
(docs/detector.md, "Enlarged images"). An enlargement leaves traces that blur and ordinary
content do not leave together:

* **periodicity** — output pixels fall on a repeating pattern of sub-pixel positions of the
  source grid, so the local curvature (the second difference) varies with a period of the
  scale factor. For an exact 2× with centred pixels the two phases mirror each other and the
  curvature pattern cancels; there the trace is which of the two pixel pairings a 2× shrink
  and re-enlargement reproduces better (:func:`phase_asymmetry`);
* **band limit** — nothing above the source's Nyquist frequency survives, so shrinking by
  the factor and enlarging back loses little compared with shrinking twice as far
  (:func:`band_limit`). Blurred photos share this trace but not periodicity; JPEG's 8-pixel
  grid and textures share periodicity but not the band limit.

:func:`enlargement_factor` looks for them, undoes what it finds and looks again (an
enlargement found short is completed on the next round). It reads a central crop of at most
:data:`MAX_SIDE` pixels of the grey image: about 3.5 ms at 256², 22 ms at 1024²
(docs/benchmarks.md).

>>> import numpy as np, cv2
>>> rng = np.random.default_rng(0)
>>> photo = cv2.GaussianBlur(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8), (0, 0), 0.7)
>>> enlargement_factor(photo)
1.0
>>> round(enlargement_factor(cv2.resize(photo, (400, 400), interpolation=cv2.INTER_CUBIC)), 2)
2.0
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BAND_LIMIT_MAX",
    "MAX_SIDE",
    "MIN_SIDE",
    "PEAK_MIN",
    "PHASE_MAX",
    "band_limit",
    "enlargement_factor",
    "periodic_peak",
    "phase_asymmetry",
    "shrink_back",
    "shrunk_size",
]

MAX_SIDE = 1024  # the estimate reads a central crop at most this large
MIN_SIDE = 48  # images (or what is left of them) smaller than this are not analysed
PHASE_MAX = 0.9  # an exact 2×: the better pixel pairing's residual is below this share of the other's
PEAK_MIN = 10.0  # other factors: the curvature spectrum's peak over its median, on both axes
BAND_LIMIT_MAX = 0.4  # and either way: residual of shrinking by s over that of shrinking by 2s
_MIN_STEP = 1.2  # enlargements by less than this are left alone (training covers up to 1.5×)
_MAX_ROUNDS = 3
_MIN_DETAIL = 0.25  # mean absolute step between neighbouring pixels (grey levels) below which nothing is read
_JOINT_TOLERANCE = 0.01  # the peak must sit at the same frequency on both axes (cycles per pixel)
_JPEG_GRID_MIN = 3.0  # curvature peak at 1/8 cycle per pixel (over the median) that marks a JPEG grid

Grey = NDArray[np.float32]


def _grey(bgr: NDArray[np.uint8]) -> Grey:
    h, w = bgr.shape[:2]
    y, x = max(0, (h - MAX_SIDE) // 2), max(0, (w - MAX_SIDE) // 2)
    crop = bgr[y : y + MAX_SIDE, x : x + MAX_SIDE]
    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return np.asarray(grey, np.float32)


def _pairing_residuals(grey: Grey, k: int) -> list[float]:
    """Per phase p < k: how well shrinking the columns by k (pixels p, p+1.. grouped) and
    enlarging back reproduces the image."""
    out = []
    for p in range(k):
        width = (grey.shape[1] - p) // k * k
        part = grey[:, p : p + width]
        small = cv2.resize(part, (width // k, part.shape[0]), interpolation=cv2.INTER_AREA)
        back = cv2.resize(small, (width, part.shape[0]), interpolation=cv2.INTER_CUBIC)
        out.append(float(np.abs(part - back)[:, 2 * k : -2 * k].mean()))
    return out


def phase_asymmetry(grey: Grey, k: int = 2) -> float:
    """Best over worst pixel-grouping residual for a k× shrink, the larger of the two axes:
    near 1 for a native image, well below for an exact k× enlargement."""
    ratios = []
    for image in (grey, np.ascontiguousarray(grey.T)):
        res = _pairing_residuals(image, k)
        ratios.append(min(res) / max(max(res), 1e-6))
    return max(ratios)


def _curvature_spectrum(grey: Grey, axis: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    d2 = np.abs(np.diff(grey, n=2, axis=axis)).mean(axis=1 - axis).astype(np.float64)
    d2 -= d2.mean()
    power = np.abs(np.fft.rfft(d2 * np.hanning(d2.size)))
    return np.fft.rfftfreq(d2.size).astype(np.float64), power.astype(np.float64)


def periodic_peak(grey: Grey) -> tuple[float, float]:
    """(frequency, strength) of the strongest period in the curvature along both axes:
    frequency in cycles per pixel (folded into 0.1–0.5), strength the weaker axis's peak over
    its spectrum's median. (0, 0) when the axes disagree."""
    found = []
    for axis in (0, 1):
        freq, power = _curvature_spectrum(grey, axis)
        band = freq > 0.05
        if band.sum() < 8:
            return 0.0, 0.0
        strength = power / (np.median(power[band]) + 1e-9)
        # JPEG's 8-pixel blocks put curvature peaks at k/8 cycles per pixel, led by 1/8: where
        # 1/8 itself stands out, peaks at 2/8 and 3/8 are the codec's, not an enlargement's. 1/8
        # stays readable (an 8x enlargement has the same period; the band limit tells them apart),
        # 0.5 is never read (a centred 2x shows no curvature period; phase_asymmetry finds it).
        on_grid = (np.abs(freq - 0.25) < _JOINT_TOLERANCE) | (np.abs(freq - 0.375) < _JOINT_TOLERANCE)
        jpeg = float(strength[np.argmin(np.abs(freq - 0.125))]) >= _JPEG_GRID_MIN
        usable = (freq > 0.1) & (freq < 0.49) & ~(on_grid & jpeg)
        if not usable.any():
            return 0.0, 0.0
        i = int(np.argmax(np.where(usable, strength, 0.0)))
        found.append((float(freq[i]), float(strength[i])))
    (f0, s0), (f1, s1) = found
    if abs(f0 - f1) > _JOINT_TOLERANCE:
        return 0.0, 0.0
    return (f0 + f1) / 2, min(s0, s1)


def _roundtrip(grey: Grey, s: float) -> float:
    h, w = grey.shape
    small = cv2.resize(grey, (max(1, round(w / s)), max(1, round(h / s))), interpolation=cv2.INTER_AREA)
    back = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return float(np.abs(grey - back)[4:-4, 4:-4].mean())


def band_limit(grey: Grey, s: float) -> float:
    """What shrinking by ``s`` and enlarging back loses, over what shrinking by ``2s`` loses:
    about 0.45–0.8 for photos, below 0.4 for an enlargement by ``s`` (and for blur)."""
    return _roundtrip(grey, s) / max(_roundtrip(grey, 2 * s), 1e-6)


def _one_step(grey: Grey) -> float:
    if float(np.abs(np.diff(grey, axis=1)).mean()) < _MIN_DETAIL:
        return 1.0  # flat: neither trace can be told from rounding
    if phase_asymmetry(grey, 2) < PHASE_MAX and band_limit(grey, 2.0) < BAND_LIMIT_MAX:
        return 2.0
    freq, strength = periodic_peak(grey)
    if strength < PEAK_MIN:
        return 1.0
    # Two factors fold to one frequency (1.5x and 3x both to 1/3 cycle per pixel): take the
    # larger one whose band limit holds, since shrinking a 1.5x enlargement by 3 loses content.
    for s in (1.0 / freq, 1.0 / (1.0 - freq)):
        if s >= _MIN_STEP and band_limit(grey, s) < BAND_LIMIT_MAX:
            return s
    return 1.0


def shrunk_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """(height, width) after :func:`shrink_back` by ``factor``.

    >>> shrunk_size(601, 800, 2.0), shrunk_size(601, 800, 1.0)
    ((300, 400), (601, 800))
    """
    if factor <= 1.0:
        return height, width
    return max(1, round(height / factor)), max(1, round(width / factor))


def shrink_back(bgr: NDArray[np.uint8], factor: float) -> NDArray[np.uint8]:
    """The image shrunk by ``factor`` (area averaging); unchanged when ``factor`` is 1."""
    if factor <= 1.0:
        return bgr
    h, w = shrunk_size(bgr.shape[0], bgr.shape[1], factor)
    return np.ascontiguousarray(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA))


def enlargement_factor(bgr: NDArray[np.uint8]) -> float:
    """By how much the image looks enlarged (1.0: no enlargement found)."""
    grey = _grey(bgr)
    total = 1.0
    for _ in range(_MAX_ROUNDS):
        if min(grey.shape) < MIN_SIDE:
            break
        step = _one_step(grey)
        if step == 1.0:
            break
        total *= step
        h, w = grey.shape
        grey = np.asarray(
            cv2.resize(grey, (round(w / step), round(h / step)), interpolation=cv2.INTER_AREA), np.float32
        )
    return total
