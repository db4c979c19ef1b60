"""What the video path's face crops cost and buy: the same stills scored as images and as frames.

Quality, not speed. ``detect`` scores a still image whole, but a video frame as the most
suspicious of the whole frame and each face the Haar cascade finds in it
(``Detector.frame_logit``). This scores every image under ``--real`` (and ``--fake``) both
ways and reports, per class, the share flagged at the model's threshold (all images, and
those with a face found), and with ``--fake`` the AUC of each path. The image path on the
same files is the baseline.

    python bench/face_path.py --real WORKDIR/dataset/test/real/photo --fake WORKDIR/dataset/test/fake/blend
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

from authenticity._files import walk_files
from authenticity.detection import metrics
from authenticity.detection.evaluate import IMAGE_SUFFIXES
from authenticity.detection.scoring import Detector
from authenticity.detection.video import FrameSample, detect_faces
from authenticity.errors import AuthenticityError
from authenticity.media import load_image_bgr


def images_in(folder: Path) -> list[Path]:
    """The image files below *folder* (linked folders followed), in a stable order."""
    return [p for p in walk_files(folder) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]


def both_logits(detector: Detector, path: Path) -> tuple[float, float, int]:
    """(image-path logit, frame-path logit, faces found) for one still; the whole image is scored once."""
    bgr = load_image_bgr(path)
    image = detector.image_logit(bgr)
    sample = FrameSample(0, 0.0, bgr, detect_faces(bgr))
    return image, detector.frame_logit(sample, whole=image), len(sample.faces)


def _flagged(detector: Detector, logits: np.ndarray) -> float | None:
    if not logits.size:
        return None
    return round(float(np.mean([detector.calibrate(float(z)) >= detector.cfg.threshold for z in logits])), 3)


def measure(detector: Detector, real: list[Path], fake: list[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    scored: dict[str, np.ndarray] = {}
    for name, paths in (("real", real), ("fake", fake)):
        if not paths:
            continue
        a = np.asarray([both_logits(detector, p) for p in paths], np.float64).reshape(-1, 3)
        scored[name] = a
        faces = a[:, 2] > 0
        out[name] = {"n": len(a), "with_faces": int(faces.sum()),
                     "flagged_image_path": _flagged(detector, a[:, 0]),
                     "flagged_frame_path": _flagged(detector, a[:, 1]),
                     "with_faces_flagged_image_path": _flagged(detector, a[faces, 0]),
                     "with_faces_flagged_frame_path": _flagged(detector, a[faces, 1])}  # fmt: skip
    if "real" in scored and "fake" in scored:
        y = np.r_[np.zeros(len(scored["real"])), np.ones(len(scored["fake"]))]
        for column, key in ((0, "auc_image_path"), (1, "auc_frame_path")):
            out[key] = round(metrics.auc(y, np.r_[scored["real"][:, column], scored["fake"][:, column]]), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, required=True, help="a folder of real images")
    parser.add_argument("--fake", type=Path, help="a folder of synthetic images (adds the AUC of each path)")
    parser.add_argument("--weights", type=Path, help="detector weights (default: the shipped model)")
    args = parser.parse_args(argv)
    lists = []
    for folder in (args.real, args.fake):
        found = images_in(folder) if folder is not None and folder.is_dir() else []
        if folder is not None and not found:
            print(f"error: {folder}: no images", file=sys.stderr)
            return 2
        lists.append(found)
    try:
        report = measure(Detector.load(args.weights), lists[0], lists[1])
    except AuthenticityError as exc:  # unreadable weights or image: one line, not a traceback
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
