"""Would the video path's face crops do better with a calibration of their own?

Quality, not speed. A video frame is scored as the most suspicious of the whole frame and
each face found in it (``Detector.frame_logit``), with one calibration for both. Face crops
are a population of their own (the face false positives sit there), so this fits a second
temperature and bias on the face logits of the validation split's face crops (reals) and
self-blends (fakes), as ``detector train`` fits the image calibration, and compares, on the
validation and test splits, four ways to score a frame from its calibrated logits:

- ``image``: the whole frame only (the image path);
- ``max``: the most suspicious of the frame and its faces, one calibration (the video path now);
- ``max_face_cal``: the same, each face under its own calibration;
- ``add_face_llr``: the frame's calibrated logit plus the most suspicious face's, under its
  own calibration (the face's evidence added as a log-likelihood ratio).

Per rule and group of files: the shares labelled synthetic and uncertain, and the AUC of
blends against real face crops and against all reals. (Which photos the flagged face crops
come from: ``bench/flagged_reals.py``.)

    python bench/face_calibration.py --dataset WORKDIR/dataset [--weights W]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from authenticity.detection import metrics
from authenticity.detection.scoring import Detector
from authenticity.detection.video import FrameSample, detect_faces
from authenticity.errors import AuthenticityError
from authenticity.media import load_image_bgr

RULES = ("image", "max", "max_face_cal", "add_face_llr")


@dataclass(frozen=True)
class Scored:
    """One file: its group (``real/face``...), whole-image logit and the logit of each face found in it."""

    group: str
    whole: float
    faces: tuple[float, ...]


def score_split(detector: Detector, split_dir: Path) -> list[Scored]:
    """Every real file and every self-blend of one split, scored whole and per face found."""
    files = sorted((split_dir / "real").glob("*/*.png")) + sorted((split_dir / "fake" / "blend").glob("*.png"))
    out = []
    for path in files:
        bgr = load_image_bgr(path)
        sample = FrameSample(0, 0.0, bgr, detect_faces(bgr))
        whole = detector.image_logit(bgr)
        group = f"{path.parent.parent.name}/{path.parent.name}"
        out.append(Scored(group, whole, tuple(detector.face_logits(sample))))
    return out


def fit_face_calibration(files: list[Scored]) -> tuple[float, float, int]:
    """``(temperature, bias, n)`` fitted on the most suspicious face of each face crop and blend with one."""
    crops = [f for f in files if f.faces and f.group in ("real/face", "fake/blend")]
    pairs = [(max(f.faces), f.group == "fake/blend") for f in crops]
    labels = [y for _, y in pairs]
    if not pairs or all(labels) or not any(labels):
        raise ValueError("the validation split needs face crops and blends with a face found in them")
    temperature, bias = metrics.fit_temperature([z for z, _ in pairs], labels)
    return temperature, bias, len(pairs)


def rule_logit(rule: str, image_cal: Callable[[float], float], face_cal: Callable[[float], float], f: Scored) -> float:
    """A frame's calibrated logit under one rule (a frame without a face scores as an image)."""
    whole = image_cal(f.whole)
    if not f.faces or rule == "image":
        return whole
    face = max(f.faces)
    if rule == "max":
        return max(whole, image_cal(face))
    if rule == "max_face_cal":
        return max(whole, face_cal(face))
    return whole + face_cal(face)  # add_face_llr


def _shares(detector: Detector, z: list[float]) -> dict[str, float | None]:
    if not z:
        return {"synthetic": None, "uncertain": None}
    labels = [detector.cfg.label_for(float(1 / (1 + np.exp(-np.clip(v, -60, 60))))).value for v in z]
    return {"synthetic": round(labels.count("synthetic") / len(z), 3),
            "uncertain": round(labels.count("uncertain") / len(z), 3)}  # fmt: skip


def _auc(real: list[float], fake: list[float]) -> float | None:
    if not real or not fake:
        return None
    return round(metrics.auc(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake]), 3)


def report(detector: Detector, splits: dict[str, list[Scored]], fit: tuple[float, float, int]) -> dict[str, Any]:
    """The fitted face calibration (``fit_face_calibration`` of the val split) and, per split, the rule table."""
    cfg = detector.cfg
    temperature, bias, n = fit
    image_cal: Callable[[float], float] = lambda z: (z + cfg.logit_bias) / cfg.temperature  # noqa: E731
    face_cal: Callable[[float], float] = lambda z: (z + bias) / temperature  # noqa: E731
    out: dict[str, Any] = {"face_calibration": {"temperature": round(temperature, 3), "bias": round(bias, 3), "n": n},
                           "image_calibration": {"temperature": round(cfg.temperature, 3),
                                                 "bias": round(cfg.logit_bias, 3)}}  # fmt: skip
    for split, files in splits.items():
        groups = {"real photos with a face": [f for f in files if f.group == "real/photo" and f.faces],
                  "real face crops": [f for f in files if f.group == "real/face"],
                  "all reals": [f for f in files if f.group.startswith("real/")],
                  "blends": [f for f in files if f.group == "fake/blend"]}  # fmt: skip
        rules: dict[str, Any] = {}
        for rule in RULES:
            z = {g: [rule_logit(rule, image_cal, face_cal, f) for f in items] for g, items in groups.items()}
            rules[rule] = {**{g: {"n": len(v), **_shares(detector, v)} for g, v in z.items()},
                           "auc_blends_vs_face_crops": _auc(z["real face crops"], z["blends"]),
                           "auc_blends_vs_all_reals": _auc(z["all reals"], z["blends"])}  # fmt: skip
        out[split] = rules
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a `detector train` workdir's dataset/")
    parser.add_argument("--weights", type=Path, help="detector weights (default: the shipped model)")
    args = parser.parse_args(argv)
    for split in ("val", "test"):
        if not (args.dataset / split / "real").is_dir():
            print(f"error: {args.dataset / split / 'real'}: missing (a `detector train` dataset)", file=sys.stderr)
            return 2
    try:
        detector = Detector.load(args.weights)
        splits = {"val": score_split(detector, args.dataset / "val")}
        fit = fit_face_calibration(splits["val"])  # before the test split is scored: minutes saved on a bad split
        splits["test"] = score_split(detector, args.dataset / "test")
    except AuthenticityError as exc:  # unreadable weights or image: one line, not a traceback
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {args.dataset / 'val'}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report(detector, splits, fit), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
