"""Add an experimental ``splice`` family to a built training workdir, for ``bench/lofo.py``.

A splice fake is a 256-px crop of a real photo with a random region of itself, jittered,
pasted back through a soft ellipse (``synth.self_blend_region``): the self-blend of the
``blend`` family without the face. It asks whether blending evidence learnt away from
faces carries to unseen face blends. Each fake keeps its source photo's split, so no
test photo is trained on; the family is written once (a workdir that has it is refused).
``detector train`` does not build it; a ``bench/lofo.py`` variant leaves it out with
``drop=splice``.

    python bench/splice_family.py --workdir /tmp/train_run
    python bench/lofo.py --workdir /tmp/train_run --out OUT --no-all --families blend \\
        --variant base:steps=3000,drop=splice --variant splice:steps=3000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from authenticity.detection.train.synth import self_blend_region

FAMILY = "splice"
SPLITS = ("train", "val", "test")


def add_splice(dataset: Path, per_family: int = 400, side: int = 256, seed: int = 0) -> dict[str, int]:
    """Write ``per_family`` splice fakes under ``dataset/<split>/fake/splice``; returns counts per split."""
    photos = [(split, p) for split in SPLITS for p in sorted((dataset / split / "real" / "photo").glob("*.png"))]
    if not photos:
        raise SystemExit(f"error: {dataset}: no real photos under <split>/real/photo; build it with `detector train`")
    if any((dataset / split / "fake" / FAMILY).exists() for split in SPLITS):
        raise SystemExit(f"error: {dataset}: already has a {FAMILY} family")
    rng = np.random.default_rng([seed, 200])
    order = [photos[i] for i in rng.permutation(len(photos))]
    counts = dict.fromkeys(SPLITS, 0)
    for k in range(per_family):
        split, path = order[k % len(order)]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"error: {path}: not a readable image")
        h, w = image.shape[:2]
        s = min(side, h, w)
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        fake = self_blend_region(np.ascontiguousarray(image[y : y + s, x : x + s]), rng)
        out = dataset / split / "fake" / FAMILY / f"{path.stem}__{k}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out), fake):
            raise SystemExit(f"error: {out}: could not be written")
        counts[split] += 1
    (dataset / f"{FAMILY}.json").write_text(json.dumps({"per_family": per_family, "seed": seed, "counts": counts}))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a workdir built by `detector train`")
    parser.add_argument("--per-family", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(add_splice(args.workdir / "dataset", args.per_family, seed=args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
