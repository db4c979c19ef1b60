"""Which real images a detector flags, grouped by the photo they were cut from.

Quality, not speed. A false-positive rate says how many real images are flagged; this says
which. For the chosen splits and real sources of a built dataset it scores every real image
and reports, per source photo, how many of its images are flagged at the model's threshold,
whether they are grey, their pixel size, and the highest calibrated P(synthetic). Dataset
files are named ``<subset>__<photo>[__<k>]``, so a whole photo and the crops cut from it
share the group of the first two parts. Only groups with a flagged image are listed, most
flagged first, after the totals.

    python bench/flagged_reals.py --dataset WORKDIR/dataset [--splits test,val] [--sources photo,face] [--weights W]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from authenticity.detection.evaluate import score_files
from authenticity.detection.scoring import Detector
from authenticity.detection.train.synth import is_grey
from authenticity.errors import AuthenticityError
from authenticity.media import load_image_bgr


def measure(detector: Detector, dataset: Path, splits: list[str], sources: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"splits": splits}
    for source in sources:
        paths = [p for split in splits for p in sorted((dataset / split / "real" / source).glob("*.png"))]
        if not paths:
            raise SystemExit(f"error: {dataset}: no real/{source} images in split(s) {', '.join(splits)}")
        probs = [detector.calibrate(float(z)) for z in score_files(detector, paths)]
        groups: dict[str, list[tuple[Path, float]]] = defaultdict(list)
        for path, p in zip(paths, probs, strict=True):
            groups["__".join(path.stem.split("__")[:2])].append((path, p))
        rows: list[dict[str, Any]] = []
        for photo, members in groups.items():
            flagged = [(path, p) for path, p in members if p >= detector.cfg.threshold]
            if flagged:
                bgr = load_image_bgr(flagged[0][0])  # the group's size and colour, from one of its images
                rows.append({"photo": photo, "flagged": len(flagged), "of": len(members), "grey": is_grey(bgr),
                             "size": list(bgr.shape[:2]), "max_p": round(max(p for _, p in flagged), 3)})  # fmt: skip
        rows.sort(key=lambda r: (-r["flagged"], r["photo"]))
        out[source] = {"images": len(paths), "photos": len(groups),
                       "flagged": sum(r["flagged"] for r in rows), "groups": rows}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a built dataset folder (WORKDIR/dataset)")
    parser.add_argument("--splits", default="test,val", help="comma-separated splits (default: test,val)")
    parser.add_argument("--sources", default="photo,face", help="comma-separated real sources (default: photo,face)")
    parser.add_argument("--weights", type=Path, help="detector weights (default: the shipped model)")
    args = parser.parse_args(argv)
    splits, sources = ([part for part in text.split(",") if part] for text in (args.splits, args.sources))
    try:
        report = measure(Detector.load(args.weights), args.dataset, splits, sources)
    except AuthenticityError as exc:  # unreadable weights or image: one line, not a traceback
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
