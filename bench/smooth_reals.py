"""Add smoothed real images (``real/smoothed``) to a built training workdir, for ``bench/lofo.py``.

An experiment, not part of ``detector train``. The detector's logit falls with fine detail
among real photos (``bench/detail_bias.py``: smoother photos are scored more synthetic),
because most fake families are smoother than most reals; tight face crops and a drawn
gradient are the real images it flags. Real photos are often smooth too: out of focus,
denoised by a phone, digitally zoomed. This writes such copies of real crops and face
crops, labelled *real*, so that smoothness alone stops being evidence: each is one of a
Gaussian blur (σ 1–2.5), a digital zoom (area-downscaled ×2–4, bicubic back up) or a
non-local-means denoise. Only the chosen splits get them (by default ``train``, so the
test split stays that of the workdir it was copied from); each keeps its source's split.
A workdir that has them is refused.

    cp -al /tmp/train_run /tmp/smooth_run && python bench/smooth_reals.py --workdir /tmp/smooth_run
    python bench/lofo.py --workdir /tmp/smooth_run --out OUT --families "" --variant smooth
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

SOURCE = "smoothed"
FROM = ("photo", "face")  # real sources the copies are made from
KINDS = ("blur", "zoom", "denoise")


def smooth(bgr: NDArray[np.uint8], kind: str, rng: np.random.Generator) -> NDArray[np.uint8]:
    """A smoothed copy of ``bgr``, same shape: ``blur``, ``zoom`` (down and bicubic up) or ``denoise``."""
    h, w = bgr.shape[:2]
    if kind == "blur":
        out = cv2.GaussianBlur(bgr, (0, 0), float(rng.uniform(1.0, 2.5)))
    elif kind == "zoom":
        f = float(rng.uniform(2.0, 4.0))
        low = cv2.resize(bgr, (max(1, round(w / f)), max(1, round(h / f))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    elif kind == "denoise":
        strength = float(rng.uniform(5.0, 12.0))
        out = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(bgr), None, strength, strength, 7, 21)
    else:
        raise ValueError(f"unknown smoothing {kind!r}: use {', '.join(KINDS)}")
    return np.ascontiguousarray(out, dtype=np.uint8)


def add_smoothed(dataset: Path, count: int = 400, splits: tuple[str, ...] = ("train",), side: int = 256,
                 seed: int = 0) -> dict[str, int]:  # fmt: skip
    """Write ``count`` smoothed reals under ``dataset/<split>/real/smoothed``; returns counts per split."""
    sources = [(split, p) for split in splits for src in FROM
               for p in sorted((dataset / split / "real" / src).glob("*.png"))]  # fmt: skip
    if not sources:
        raise SystemExit(f"error: {dataset}: no real photos or faces in split(s) {', '.join(splits)}")
    if any((dataset / split / "real" / SOURCE).exists() for split in ("train", "val", "test")):
        raise SystemExit(f"error: {dataset}: already has real/{SOURCE} images")
    rng = np.random.default_rng([seed, 300])
    order = [sources[i] for i in rng.permutation(len(sources))]
    counts = dict.fromkeys(splits, 0)
    for k in range(count):
        split, path = order[k % len(order)]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"error: {path}: not a readable image")
        h, w = image.shape[:2]
        s_h, s_w = min(side, h), min(side, w)
        y, x = int(rng.integers(0, h - s_h + 1)), int(rng.integers(0, w - s_w + 1))
        crop = np.ascontiguousarray(image[y : y + s_h, x : x + s_w], dtype=np.uint8)
        kind = KINDS[k % len(KINDS)]
        out = dataset / split / "real" / SOURCE / f"{path.stem}__{kind}{k}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out), smooth(crop, kind, rng)):
            raise SystemExit(f"error: {out}: could not be written")
        counts[split] += 1
    (dataset / f"{SOURCE}.json").write_text(json.dumps({"count": count, "seed": seed, "counts": counts}))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a workdir built by `detector train`")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--splits", default="train", help="comma-separated splits to add to (default: train)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    splits = tuple(s for s in args.splits.split(",") if s)
    print(json.dumps(add_smoothed(args.workdir / "dataset", args.count, splits, seed=args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
