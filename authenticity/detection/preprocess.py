"""Pre-processing derived from the cfg, identical for training and scoring.

Synthesis artifacts live in high frequencies that downscaling destroys, so images are
never shrunk to the network input: they are cut into native-resolution tiles of
``cfg.tile_size`` pixels. An image whose short side is below the tile size is upscaled
(bilinear) until it fits one tile — in training and in scoring alike, and for both
classes, so the size itself can't become a shortcut. The one shrink is opt-in
(``cfg.undo_enlargement``): an image that carries the traces of an enlargement is scored at
the size it had before (:mod:`authenticity.detection.resampling`).

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
from authenticity.detection.resampling import enlargement_factor, shrink_back, shrunk_size

__all__ = [
    "Box",
    "ScoringView",
    "ensure_min_side",
    "fine_detail",
    "grid_boxes",
    "image_tiles",
    "normalize",
    "random_tile",
    "scored_size",
    "scoring_view",
    "view_tiles",
]


@dataclass(frozen=True)
class Box:
    """A tile's position in the (possibly upscaled) image."""

    y: int
    x: int
    size: int


def scored_size(height: int, width: int, tile_size: int, enlargement: float = 1.0) -> tuple[int, int]:
    """(height, width) of an image as scored: shrunk back by *enlargement* (what
    :func:`scoring_view` undid; 1.0: nothing), then brought up by :func:`ensure_min_side`.

    >>> scored_size(32, 64, 128), scored_size(300, 400, 128), scored_size(600, 800, 128, 2.0)
    ((128, 256), (300, 400), (300, 400))
    """
    height, width = shrunk_size(height, width, enlargement)
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


@dataclass(frozen=True)
class ScoringView:
    """The image as it is scored, and the enlargement undone to get it (1.0: none)."""

    image: NDArray[np.uint8]
    enlargement: float


def scoring_view(bgr: NDArray[np.uint8], cfg: DetectorCfg) -> ScoringView:
    """Undo an enlargement where the cfg asks for it, then bring a small image up to one tile.

    >>> scoring_view(np.zeros((40, 60, 3), np.uint8), DetectorCfg()).image.shape
    (128, 192, 3)
    """
    factor = enlargement_factor(bgr) if cfg.undo_enlargement else 1.0
    return ScoringView(ensure_min_side(shrink_back(bgr, factor), cfg.tile_size), factor)


def view_tiles(view: ScoringView, cfg: DetectorCfg) -> tuple[NDArray[np.float32], list[Box]]:
    """All scoring tiles of an image as scored, normalised, with their boxes."""
    image = view.image
    boxes = grid_boxes(image.shape[0], image.shape[1], cfg.tile_size, cfg.max_tiles)
    crops = np.stack([image[b.y : b.y + b.size, b.x : b.x + b.size] for b in boxes])
    return normalize(crops, cfg), boxes


def image_tiles(bgr: NDArray[np.uint8], cfg: DetectorCfg) -> tuple[NDArray[np.float32], list[Box]]:
    """All scoring tiles of one image, normalised, with their boxes."""
    return view_tiles(scoring_view(bgr, cfg), cfg)


def random_tile(bgr: NDArray[np.uint8], tile_size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    """One random native-resolution tile (training); small images are upscaled as in scoring."""
    image = ensure_min_side(bgr, tile_size)
    h, w = image.shape[:2]
    y = int(rng.integers(0, h - tile_size + 1))
    x = int(rng.integers(0, w - tile_size + 1))
    return np.ascontiguousarray(image[y : y + tile_size, x : x + tile_size])
