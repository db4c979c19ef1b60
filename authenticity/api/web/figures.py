"""PNG figures for the item page, drawn from a stored verdict: tile heatmap over an image, frame timeline.

The verdict holds the tile boxes in the coordinates of the image *as scored* (an image whose short
side is below the tile size was upscaled first, and one the detector found enlarged was shrunk back,
see ``detection.preprocess.scored_size``), so the
image is drawn stretched over that extent instead of resizing anything. matplotlib is imported
lazily (it comes with the ``detect`` extra; ``review.figure.unavailable`` without it) and used
through its object API only, under one lock, so concurrent requests never share pyplot state.

>>> tiles = [{"y": 0, "x": 0, "size": 128, "score": 0.9}, {"y": 0, "x": 72, "size": 128, "score": 0.2}]
>>> scored_extent(tiles, height=100, width=150)
(128, 192)
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from authenticity.detection.preprocess import scored_size
from authenticity.errors import ConfigError, UsageError
from authenticity.media import load_image_bgr

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

__all__ = ["frame_timeline_png", "scored_extent", "tile_heatmap_png"]

_lock = threading.Lock()
_MAX_TILES = 4096  # a verdict row is data from the database: bound the work it can ask for
_GRID = 1024


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _tiles(raw: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, int, float]]:
    tiles = []
    for tile in raw[:_MAX_TILES]:
        y, x, size, score = (_number(tile.get(k)) for k in ("y", "x", "size", "score"))
        if y is not None and x is not None and size and size > 0 and score is not None:
            tiles.append((int(y), int(x), int(size), min(max(score, 0.0), 1.0)))
    return tiles


def scored_extent(
    tiles: Sequence[Mapping[str, Any]], *, height: int, width: int, enlargement: float = 1.0
) -> tuple[int, int]:
    """(height, width) of the image as the detector scored it, from the tile size and the
    enlargement it undid (``detector_enlargement``)."""
    parsed = _tiles(tiles)
    return scored_size(height, width, parsed[0][2], enlargement) if parsed else (height, width)


def _matplotlib() -> tuple[type[Figure], type[Rectangle]]:
    try:
        import matplotlib

        matplotlib.use("Agg")  # headless
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError as exc:
        raise ConfigError("review.figure.unavailable", "drawing figures needs matplotlib (the 'detect' extra)") from exc
    return Figure, Rectangle


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def tile_heatmap_png(
    image: Path, tiles: Sequence[Mapping[str, Any]], *, max_pixels: int, title: str, enlargement: float = 1.0
) -> bytes:
    """The image with each tile's P(synthetic) over it (``review.figure.none`` without usable tiles).
    *enlargement*: what the detector undid before scoring, so the tiles land where they were cut."""
    parsed = _tiles(tiles)
    if not parsed:
        raise UsageError("review.figure.none", "this verdict has no tile scores to draw")
    bgr = load_image_bgr(image, max_pixels=max_pixels)
    height, width = scored_size(bgr.shape[0], bgr.shape[1], parsed[0][2], enlargement)
    # Drawn at most _GRID pixels wide: a large photo would otherwise cost gigabytes of float grid.
    scale = min(1.0, _GRID / max(height, width))
    grid_h, grid_w = max(1, round(height * scale)), max(1, round(width * scale))
    total, count = np.zeros((grid_h, grid_w)), np.zeros((grid_h, grid_w))
    for y, x, size, score in parsed:
        rows = slice(int(y * scale), max(int(y * scale) + 1, int((y + size) * scale)))
        cols = slice(int(x * scale), max(int(x * scale) + 1, int((x + size) * scale)))
        total[rows, cols] += score
        count[rows, cols] += 1
    heat = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    shown = cv2.resize(bgr, (grid_w, grid_h), interpolation=cv2.INTER_AREA) if scale < 1.0 else bgr
    figure, rectangle = _matplotlib()
    with _lock:
        fig = figure(figsize=(7, 7 * height / max(width, 1) + 0.6))
        ax = fig.add_subplot()
        ax.imshow(shown[..., ::-1], extent=(0, width, height, 0), interpolation="bilinear")
        mappable = ax.imshow(heat, extent=(0, width, height, 0), cmap="magma", vmin=0.0, vmax=1.0, alpha=0.45,
                             interpolation="nearest")  # fmt: skip
        for y, x, size, score in parsed:
            ax.add_patch(rectangle((x, y), size, size, fill=False, edgecolor="white", linewidth=0.6))
            ax.text(x + 3, y + 3, f"{score:.2f}", color="white", fontsize=7, va="top",
                    bbox={"facecolor": "black", "alpha": 0.4, "pad": 1, "linewidth": 0})  # fmt: skip
        fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.02, label="tile P(synthetic)")
        ax.set_title(title, fontsize="medium")
        ax.set_axis_off()
        return _png(fig)


def frame_timeline_png(frames: Sequence[Mapping[str, Any]], *, score: float | None, title: str) -> bytes:
    """Per-frame P(synthetic) over time, frames with faces ringed (``review.figure.none`` without frames)."""
    points = []
    for frame in frames[:_MAX_TILES]:
        t, s = _number(frame.get("time_s")), _number(frame.get("score"))
        if t is not None and s is not None:
            points.append((t, min(max(s, 0.0), 1.0), bool(frame.get("faces"))))
    if not points:
        raise UsageError("review.figure.none", "this verdict has no frame scores to draw")
    figure, _ = _matplotlib()
    with _lock:
        fig = figure(figsize=(8, 3.2))
        ax = fig.add_subplot()
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color="navy", markersize=4, label="frame")
        faces = [p for p in points if p[2]]
        if faces:
            ax.scatter([p[0] for p in faces], [p[1] for p in faces], s=40, facecolors="none", edgecolors="green",
                       label="face(s) found")  # fmt: skip
        if score is not None:
            ax.axhline(score, color="crimson", linestyle="--", linewidth=1, label=f"video score {score:.2f}")
        ax.set(ylim=(0, 1), xlabel="time (s)", ylabel="P(synthetic)")
        ax.set_title(title, fontsize="medium")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
        return _png(fig)
