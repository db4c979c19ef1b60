"""Training augmentation, applied identically to both classes.

Every training tile — real or fake — goes through the same random chain: a region
around the tile is optionally rescaled, blurred, noised and JPEG re-encoded at a random
quality, then the tile is cut at native resolution. Because both classes are re-encoded
the same way, neither file format nor compression level can separate them.

>>> rng = np.random.default_rng(0)
>>> tile = augmented_tile(np.zeros((300, 300, 3), np.uint8), 64, rng)
>>> tile.shape, tile.dtype
((64, 64, 3), dtype('uint8'))
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from authenticity.detection.preprocess import ensure_min_side, random_tile

__all__ = ["AugmentCfg", "augmented_tile", "jpeg"]


class AugmentCfg:
    """Probabilities and ranges (defaults follow common practice in GAN-image detection).

    ``p_small_rescale``: chance that an image smaller than a tile is first shrunk by
    ``small_rescale_range`` before the upscaling every small image gets, so that the
    upscaling factor (which follows from a generator's output size) can't become a label.

    ``p_enlarge``: chance that the region is enlarged by ``enlarge_range`` (after the
    ordinary resize, with an interpolation drawn from ``enlarge_interpolations``), as
    pipelines enlarge images smaller than their working size. Interpolation smooths an
    image; without this step the model reads that smoothness as synthesis (an upscaled
    real photo is flagged far more often than the photo itself).
    """

    def __init__(self, p_small_rescale: float = 0.0, p_enlarge: float = 0.0) -> None:
        self.p_small_rescale = p_small_rescale
        self.p_enlarge = p_enlarge

    small_rescale_range = (0.5, 1.0)
    small_rescale_min = 16
    p_resize = 0.3
    resize_range = (0.5, 1.5)
    enlarge_range = (1.25, 2.0)
    enlarge_interpolations = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)
    p_blur = 0.2
    blur_sigma = (0.2, 1.5)
    p_noise = 0.2
    noise_sigma = (1.0, 6.0)
    p_jpeg = 0.8
    jpeg_quality = (30, 100)
    p_flip = 0.5


def jpeg(bgr: NDArray[np.uint8], quality: int) -> NDArray[np.uint8]:
    """Re-encode as JPEG at *quality* and decode again."""
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(decoded, dtype=np.uint8)


def augmented_tile(
    bgr: NDArray[np.uint8], tile_size: int, rng: np.random.Generator, cfg: AugmentCfg | None = None
) -> NDArray[np.uint8]:
    """One augmented native-resolution tile of *bgr*."""
    cfg = cfg or AugmentCfg()
    short = min(bgr.shape[:2])
    if short < tile_size and cfg.p_small_rescale and rng.random() < cfg.p_small_rescale:
        scale = max(float(rng.uniform(*cfg.small_rescale_range)), cfg.small_rescale_min / short)
        if scale < 1:
            size = (max(1, round(bgr.shape[1] * scale)), max(1, round(bgr.shape[0] * scale)))
            bgr = np.ascontiguousarray(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA))
    image = ensure_min_side(bgr, tile_size)
    # Work on a region twice the tile size so JPEG blocks and blur see real context.
    region = random_tile(image, min(2 * tile_size, *image.shape[:2]), rng)
    if rng.random() < cfg.p_resize:
        scale = float(rng.uniform(*cfg.resize_range))
        size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        region = ensure_min_side(np.ascontiguousarray(cv2.resize(region, size, interpolation=interp)), tile_size)
    if cfg.p_enlarge and rng.random() < cfg.p_enlarge:  # no draw at all when off: the old stream
        scale = float(rng.uniform(*cfg.enlarge_range))
        interp = cfg.enlarge_interpolations[int(rng.integers(len(cfg.enlarge_interpolations)))]
        size = (round(region.shape[1] * scale), round(region.shape[0] * scale))
        region = np.ascontiguousarray(cv2.resize(region, size, interpolation=interp))
    if rng.random() < cfg.p_blur:
        region = np.asarray(cv2.GaussianBlur(region, (0, 0), float(rng.uniform(*cfg.blur_sigma))), dtype=np.uint8)
    if rng.random() < cfg.p_noise:
        noise = rng.normal(0.0, float(rng.uniform(*cfg.noise_sigma)), region.shape)
        region = np.clip(region.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_jpeg:
        region = jpeg(region, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    tile = random_tile(region, tile_size, rng)
    if rng.random() < cfg.p_flip:
        tile = tile[:, ::-1]
    return np.ascontiguousarray(tile)
