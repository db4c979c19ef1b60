"""Pre-processing derived from the cfg, identical for training and scoring.

Synthesis artifacts live in high frequencies that downscaling destroys, so images are
never shrunk to the network input: they are cut into native-resolution tiles of
``cfg.tile_size`` pixels. An image whose short side is below the tile size is upscaled
(bilinear) until it fits one tile — in training and in scoring alike, and for both
classes, so the size itself can't become a shortcut.

>>> import numpy as np
>>> cfg = DetectorCfg(tile_size=64, max_tiles=4)
>>> batch, boxes = image_tiles(np.zeros((100, 300, 3), np.uint8), cfg)
>>> batch.shape, len(boxes)
((4, 3, 64, 64), 4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from authenticity.detection.config import DetectorCfg

__all__ = [
    "Box",
    "ensure_min_side",
    "fine_detail",
    "grid_boxes",
    "image_tiles",
    "normalize",
    "random_tile",
    "scored_size",
]


@dataclass(frozen=True)
class Box:
    """A tile's position in the (possibly upscaled) image."""

    y: int
    x: int
    size: int


def scored_size(height: int, width: int, tile_size: int) -> tuple[int, int]:
    """(height, width) of an image once :func:`ensure_min_side` has run on it.

    >>> scored_size(32, 64, 128), scored_size(300, 400, 128)
    ((128, 256), (300, 400))
    """
    short = min(height, width)
    if short >= tile_size:
        return height, width
    scale = tile_size / short
    return max(tile_size, round(height * scale)), max(tile_size, round(width * scale))


def ensure_min_side(bgr: NDArray[np.uint8], tile_size: int) -> NDArray[np.uint8]:
    """Upscale so the short side is at least ``tile_size``; larger images are left as they are."""
    h, w = bgr.shape[:2]
    target = scored_size(h, w, tile_size)
    if target == (h, w):
        return bgr
    return np.ascontiguousarray(cv2.resize(bgr, (target[1], target[0]), interpolation=cv2.INTER_LINEAR))


def fine_detail(bgr: NDArray[np.uint8], tile_size: int) -> float:
    """How much fine detail an image has as scored: the mean absolute Laplacian of its grey
    image after the upscale a small image gets (:func:`ensure_min_side`).

    >>> fine_detail(np.full((40, 40, 3), 9, np.uint8), 128)
    0.0
    """
    grey = cv2.cvtColor(ensure_min_side(bgr, tile_size), cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


def _positions(length: int, tile: int, count: int) -> list[int]:
    if count <= 1 or length <= tile:
        return [max(0, (length - tile) // 2)]
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def grid_boxes(height: int, width: int, tile: int, max_tiles: int) -> list[Box]:
    """Evenly spaced tiles covering the image, at most ``max_tiles``, keeping the aspect ratio.

    >>> len(grid_boxes(128, 128, 128, 16)), len(grid_boxes(1000, 1000, 128, 16))
    (1, 16)
    """
    rows, cols = math.ceil(height / tile), math.ceil(width / tile)
    while rows * cols > max_tiles:
        if rows / height >= cols / width and rows > 1:
            rows -= 1
        elif cols > 1:
            cols -= 1
        else:
            rows -= 1
    return [Box(y, x, tile) for y in _positions(height, tile, rows) for x in _positions(width, tile, cols)]


def normalize(tiles: NDArray[np.uint8], cfg: DetectorCfg) -> NDArray[np.float32]:
    """``N×H×W×3`` BGR uint8 → ``N×3×H×W`` float32 RGB normalised with the cfg's mean/std."""
    rgb = tiles[..., ::-1].astype(np.float32) / 255.0
    mean = np.asarray(cfg.mean, np.float32)
    std = np.asarray(cfg.std, np.float32)
    return np.ascontiguousarray(((rgb - mean) / std).transpose(0, 3, 1, 2))


def image_tiles(bgr: NDArray[np.uint8], cfg: DetectorCfg) -> tuple[NDArray[np.float32], list[Box]]:
    """All scoring tiles of one image, normalised, with their boxes."""
    image = ensure_min_side(bgr, cfg.tile_size)
    boxes = grid_boxes(image.shape[0], image.shape[1], cfg.tile_size, cfg.max_tiles)
    crops = np.stack([image[b.y : b.y + b.size, b.x : b.x + b.size] for b in boxes])
    return normalize(crops, cfg), boxes


def random_tile(bgr: NDArray[np.uint8], tile_size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    """One random native-resolution tile (training); small images are upscaled as in scoring."""
    image = ensure_min_side(bgr, tile_size)
    h, w = image.shape[:2]
    y = int(rng.integers(0, h - tile_size + 1))
    x = int(rng.integers(0, w - tile_size + 1))
    return np.ascontiguousarray(image[y : y + tile_size, x : x + tile_size])
