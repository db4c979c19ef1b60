"""How faithful the ``autoenc`` family's reconstructions are: each fake against its own twin.

Quality, not speed: for a dataset built with ``detector train --autoenc-steps N``, reads
``WORKDIR/dataset/<split>/fake/autoenc/*.png`` beside ``WORKDIR/dataset/twins/<split>/real/autoenc``
(or another family made from the same twins, ``--family aecritic``: see
``bench/critic_autoenc_family.py``) and reports, separately for colour and grey source
crops, the mean PSNR, the median share of the source's colour spread kept (mean |B-G| +
|G-R|, fake over source) and the median share of its Laplacian energy kept (fine detail).
The baseline is the source itself (1.0).

    python bench/autoenc_quality.py --workdir /tmp/train_run --splits val,test
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from authenticity.detection.train._autoenc import is_colour
from authenticity.media import load_image_bgr


def _spread(bgr: np.ndarray) -> float:
    x = bgr.astype(np.int16)
    return float(np.abs(x[..., 0] - x[..., 1]).mean() + np.abs(x[..., 1] - x[..., 2]).mean())


def _detail(bgr: np.ndarray) -> float:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


def measure(dataset: Path, splits: list[str], family: str = "autoenc") -> dict[str, dict[str, float | None]]:
    rows: dict[str, list[tuple[float, float, float]]] = {"colour": [], "grey": []}
    for split in splits:
        for twin in sorted((dataset / "twins" / split / "real" / "autoenc").glob("*.png")):
            source = load_image_bgr(twin)
            fake = load_image_bgr(dataset / split / "fake" / family / twin.name)
            kept_colour = _spread(fake) / max(_spread(source), 1e-6)
            kept_detail = _detail(fake) / max(_detail(source), 1e-6)
            rows["colour" if is_colour(source) else "grey"].append(
                (float(cv2.PSNR(source, fake)), kept_colour, kept_detail)
            )
    out: dict[str, dict[str, float | None]] = {}
    for kind, values in rows.items():
        if values:
            a = np.asarray(values)
            colour = round(float(np.median(a[:, 1])), 3) if kind == "colour" else None  # grey: nothing to keep
            out[kind] = {"n": len(a), "psnr_db": round(float(a[:, 0].mean()), 2), "colour_kept": colour,
                         "detail_kept": round(float(np.median(a[:, 2])), 3)}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a training workdir built with --autoenc-steps")
    parser.add_argument("--splits", default="val,test")
    parser.add_argument("--family", default="autoenc", help="the fake family made from the autoenc twins")
    args = parser.parse_args()
    dataset = args.workdir / "dataset"
    if not (dataset / "autoencoder.json").is_file():
        hint = "build it with `detector train --workdir W --autoenc-steps N`"
        raise SystemExit(f"{dataset}: no autoencoder.json; {hint}")
    made_by = dataset / ("autoencoder.json" if args.family == "autoenc" else f"{args.family}.json")
    if not made_by.is_file():
        raise SystemExit(f"{dataset}: no {made_by.name}; make the family with bench/critic_autoenc_family.py")
    meta = json.loads(made_by.read_text())
    result = measure(dataset, args.splits.split(","), args.family)
    print(json.dumps({"autoencoder": meta, "family": args.family, "splits": args.splits,
                      "against_source": result}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
