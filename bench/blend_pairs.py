"""Self-blended faces against the face crops they were made from, grey and colour sources apart.

Quality, not speed. The ``blend`` family writes each fake beside its source crop (the same
file name under ``real/face``), the pair where the face false positives come from. For one
split of a built dataset this scores every pair with a detector and reports, separately for
grey and colour sources: the AUC of the blends against their own faces, the AUC of the
blends against every real image of the split, and the share of blends and of faces flagged
at the model's threshold; for grey sources also the share of blends that stayed grey.
Dataset recipe 1 tinted every grey face it blended (that share is 0 there), so a grey face
was never fake; the split by colour shows what a model learnt from that.

    python bench/blend_pairs.py --dataset WORKDIR/dataset --split test [--weights W]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from authenticity.detection import metrics
from authenticity.detection.evaluate import score_files
from authenticity.detection.scoring import Detector
from authenticity.detection.train.synth import is_grey
from authenticity.errors import AuthenticityError
from authenticity.media import load_image_bgr


def _flagged(detector: Detector, logits: np.ndarray) -> float:
    return round(float(np.mean([detector.calibrate(float(z)) >= detector.cfg.threshold for z in logits])), 3)


def measure(detector: Detector, dataset: Path, split: str) -> dict[str, Any]:
    """The pair figures for one split, per source colour (groups with no pair are left out)."""
    blends = sorted((dataset / split / "fake" / "blend").glob("*.png"))
    pairs = [(b, dataset / split / "real" / "face" / b.name) for b in blends]
    pairs = [(b, f) for b, f in pairs if f.is_file()]
    if not pairs:
        raise SystemExit(f"error: {dataset / split}: no blend beside its face crop (fake/blend, real/face)")
    reals = sorted((dataset / split / "real").rglob("*.png"))
    z_fake = score_files(detector, [b for b, _ in pairs])
    z_real = score_files(detector, reals)
    row = {path: i for i, path in enumerate(reals)}
    z_face = z_real[[row[f] for _, f in pairs]]  # the face crops are among the reals: scored once
    grey = np.array([is_grey(load_image_bgr(f)) for _, f in pairs])
    blend_grey = np.array([bool(g) and is_grey(load_image_bgr(b)) for (b, _), g in zip(pairs, grey, strict=True)])
    out: dict[str, Any] = {"split": split, "n_reals": len(reals)}
    for name, mask in (("grey", grey), ("colour", ~grey)):
        n = int(mask.sum())
        if not n:
            continue
        own = np.r_[np.zeros(n), np.ones(n)]
        every = np.r_[np.zeros(len(reals)), np.ones(n)]
        out[name] = {"pairs": n, "auc_vs_own_faces": round(metrics.auc(own, np.r_[z_face[mask], z_fake[mask]]), 3),
                     "auc_vs_all_reals": round(metrics.auc(every, np.r_[z_real, z_fake[mask]]), 3),
                     "blends_flagged": _flagged(detector, z_fake[mask]),
                     "faces_flagged": _flagged(detector, z_face[mask])}  # fmt: skip
        if name == "grey":
            out[name]["blends_still_grey"] = round(float(blend_grey[mask].mean()), 3)  # 0 on recipe 1: all tinted
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a built dataset folder (WORKDIR/dataset)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--weights", type=Path, help="detector weights (default: the shipped model)")
    args = parser.parse_args(argv)
    try:
        detector = Detector.load(args.weights)
    except AuthenticityError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(measure(detector, args.dataset, args.split), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
