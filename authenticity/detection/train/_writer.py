"""Dataset plumbing: the PNG writer that counts what it writes, the summary, and in-memory real photos.

>>> DatasetSummary(Path("d"), {"train": {"real": {"photo": 2}}}, 1.0, 4, 0, ()).total("train", "real")
2
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from authenticity.detection.train.sources import Split, assign_split, scene_key
from authenticity.errors import MediaError
from authenticity.media import load_image_bgr

__all__ = ["DatasetSummary", "Photo", "PngWriter", "load_photo"]

MAX_STORED_SIDE = 1024  # native pixels are kept; bigger photos are centre-cropped, never downscaled


@dataclass(frozen=True)
class DatasetSummary:
    """Counts per split → class → source/family, as written to ``summary.json``."""

    root: Path
    counts: dict[str, dict[str, dict[str, int]]]
    seconds: float
    per_family: int
    seed: int
    notes: tuple[str, ...]
    recipe: int = 0  # DATASET_RECIPE of the code that built it (0: unknown, from before the number existed)
    extra_real: tuple[str, ...] = ()  # file names of the --extra-real photos it holds

    def total(self, split: str | None = None, cls: str | None = None) -> int:
        """Files in one split and/or class (all when ``None``)."""
        return sum(n for s, by_cls in self.counts.items() if split in (None, s)
                   for c, by_src in by_cls.items() if cls in (None, c) for n in by_src.values())  # fmt: skip

    def to_json(self) -> str:
        """Pretty JSON with per-split class totals (what ``summary.json`` holds).

        >>> '"totals"' in DatasetSummary(Path("d"), {}, 0.0, 1, 0, ()).to_json()
        True
        """
        totals = {s: {c: self.total(s, c) for c in ("real", "fake")} for s in self.counts}
        return json.dumps({"root": str(self.root), "per_family": self.per_family, "seed": self.seed,
                           "recipe": self.recipe, "extra_real": list(self.extra_real),
                           "seconds": round(self.seconds, 1), "notes": list(self.notes),
                           "totals": totals, "counts": self.counts}, indent=2, sort_keys=True) + "\n"  # fmt: skip


@dataclass
class PngWriter:
    """Writes ``root/<split>/<real|fake>/<source>/<name>.png`` (fast, lossless) and counts them."""

    root: Path
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def write(self, split: Split, cls: str, source: str, name: str, bgr: NDArray[np.uint8]) -> Path:
        """Write one PNG (names are sanitised; a clash is an error, never an overwrite).

        >>> PngWriter(Path("out")).write(Split.TRAIN, "real", "photo", "a", image)   # doctest: +SKIP
        PosixPath('out/train/real/photo/a.png')
        """
        folder = self.root / split.value / cls / source
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".png")
        if path.exists():
            raise FileExistsError(f"{path}: two items got the same name")
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise MediaError("media.file.unreadable", f"{path}: could not write PNG")
        by_src = self.counts.setdefault(split.value, {}).setdefault(cls, {})
        by_src[source] = by_src.get(source, 0) + 1
        return path


@dataclass(frozen=True)
class Photo:
    """One real photo in memory, with its split and (possibly empty) detected faces."""

    source: str
    path: Path
    split: Split
    pixels: NDArray[np.uint8]
    faces: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def name(self) -> str:
        """``<source>__<stem>``: unique across sources, the prefix of everything derived from the photo."""
        return f"{self.source}__{self.path.stem}"


def load_photo(source: str, path: Path, seed: int) -> Photo:
    """Decode (gray → 3 channels), centre-crop to at most 1024 px a side, assign the file's split.

    >>> load_photo("LIVE1", Path("../shared/data/photos/LIVE1/bikes.png"), 0).split   # doctest: +SKIP
    <Split.TRAIN: 'train'>
    """
    pixels = load_image_bgr(path, max_pixels=64_000_000)
    h, w = pixels.shape[:2]
    top, left = max(0, (h - MAX_STORED_SIDE) // 2), max(0, (w - MAX_STORED_SIDE) // 2)
    pixels = np.ascontiguousarray(pixels[top : top + MAX_STORED_SIDE, left : left + MAX_STORED_SIDE])
    return Photo(source, path, assign_split(scene_key(source, path), seed), pixels)
