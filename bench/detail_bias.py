"""Are the families a model misses when unseen simply smoother than real photos?

Quality, not speed. Several families score *below* chance when held out of training (the
model finds them more real than the reals). One reading: the families it trained on add
high-frequency traces (checkerboards, noise), so it learns "more fine detail ⇒ synthetic",
and a family whose trace is a *loss* of detail (an upsampling decoder, a blend's smoothed
face, a 32-px thumbnail) then looks more real than real. This measures that reading on a
built dataset's test split and a `bench/lofo.py` output folder, with no model to load:

- *detail* of each test file: the mean absolute Laplacian of its grey image as the
  detector sees it (images smaller than a tile upscaled to one tile, as in scoring);
- per source: median detail, and the AUC of *less* detail as a detector of that family
  against all test reals (above 0.5: the family is smoother than the reals);
- per LOFO run (``runs/<variant>__<held-out>/scores.npz``): the held-out family's AUC, and
  the Spearman correlation of the model's clean logit with detail among the test reals, the
  whole real photos (``real/photo``), the real face crops (``real/face``) and the held-out
  family's files (positive: more detail, more "synthetic"; negative: smoother, more
  "synthetic");
- with ``--weights`` (default when no ``--lofo``: none), that detector scores the test split
  itself and is reported as run ``weights:<sha256 prefix>``, with the whole real photos it flags at
  its own calibrated threshold, each with its detail rank among them (1 = the smoothest).
  ``lofo.py``'s runs are uncalibrated, so only this run lists flagged photos;
- per run, calibration-free: the share of test reals (all, whole photos, face crops) at or
  above the logit where the run flags 90 % of the test fakes.

``--leave-out splice`` drops a family's test fakes from every figure, so runs on a workdir
with an experimental family compare with the families ``detector train`` builds.

    python bench/detail_bias.py --dataset W/dataset [--lofo LOFO_OUT] [--weights data/detector.safetensors]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from authenticity.detection import metrics
from authenticity.detection.config import DetectorCfg
from authenticity.detection.evaluate import score_files
from authenticity.detection.preprocess import fine_detail
from authenticity.detection.scoring import Detector
from authenticity.detection.train.finetune import load_items
from authenticity.errors import AuthenticityError
from authenticity.media import load_image_bgr

WITHIN = ("photo", "face")  # real sources whose own correlation is reported


TPR = 0.9  # the operating point of the calibration-free false-positive figures


def flagged_at_tpr(z: NDArray[np.float64], y: NDArray[np.int64], source: NDArray[np.str_],
                   tpr: float = TPR) -> dict[str, float]:  # fmt: skip
    """Share of reals (``all``, and per source in WITHIN) scoring at or above the highest logit
    that still flags ``tpr`` of the fakes (the ceil(tpr·n)-th highest fake logit)."""
    fakes = np.sort(z[y == 1])[::-1]
    threshold = fakes[int(np.ceil(tpr * len(fakes))) - 1]
    shares = {"all": float(np.mean(z[y == 0] >= threshold))}
    for within in WITHIN:
        mask = source == f"real/{within}"
        if mask.any():
            shares[within] = float(np.mean(z[mask] >= threshold))
    return {k: round(v, 3) for k, v in shares.items()}


def spearman(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Rank correlation (ties broken by order: the values here are continuous)."""
    ra, rb = np.argsort(np.argsort(a)).astype(np.float64), np.argsort(np.argsort(b)).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def flagged_photos(probs: NDArray[np.float64], d: NDArray[np.float64], source: NDArray[np.str_], paths: list[str],
                   threshold: float) -> list[dict[str, Any]]:  # fmt: skip
    """The whole real photos with ``probs >= threshold``, each with its detail rank among them (1 = smoothest)."""
    photos = np.flatnonzero(source == "real/photo")
    rank = {int(k): r + 1 for r, k in enumerate(photos[np.argsort(d[photos])])}
    return [{"photo": Path(paths[k]).stem, "detail_rank": rank[int(k)], "of": len(photos)}
            for k in photos if probs[k] >= threshold]  # fmt: skip


def measure(dataset: Path, lofo: Path | None, detector: Detector | None = None,
            leave_out: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """The figures above; the test fakes of the ``leave_out`` families take no part in any of them."""
    every = load_items(dataset, "test")
    if not every:
        raise SystemExit(f"error: {dataset}: no test split (test/real, test/fake)")
    families = {i.source for i in every if i.label == 1}
    if unknown := sorted(set(leave_out) - families):
        raise SystemExit(f"error: --leave-out {','.join(unknown)}: no such fake family in {dataset}'s test split")
    if families and families <= set(leave_out):
        raise SystemExit("error: --leave-out names every fake family: nothing would be left to measure")
    keep = np.array([not (i.label == 1 and i.source in leave_out) for i in every])
    test = [i for i, kept in zip(every, keep, strict=True) if kept]
    every_path, paths = [str(i.path) for i in every], [str(i.path) for i in test]
    tile_size = (detector.cfg if detector else DetectorCfg()).tile_size
    d = np.array([fine_detail(load_image_bgr(i.path), tile_size) for i in test])
    y = np.array([i.label for i in test])
    source = np.array([f"{'fake' if i.label else 'real'}/{i.source}" for i in test])
    real = y == 0
    out: dict[str, Any] = {"sources": {}, "runs": {}}
    for name in sorted(set(source)):
        mask = source == name
        row: dict[str, Any] = {"n": int(mask.sum()), "median_detail": round(float(np.median(d[mask])), 2)}
        if name.startswith("fake/"):
            both = real | mask
            row["auc_less_detail"] = round(metrics.auc(y[both], -d[both]), 3)
        out["sources"][name] = row
    runs: list[tuple[str, str | None, NDArray[np.float64]]] = []  # (run, held-out family, clean logits)
    for npz in sorted(lofo.glob("runs/*/scores*.npz")) if lofo else []:
        scores = np.load(npz)
        if [str(p) for p in scores["path"]] != every_path:
            raise SystemExit(f"error: {npz}: scored other files than {dataset}'s test split")
        run = npz.parent.name + npz.stem.removeprefix("scores")  # <variant>__<held-out>[-final]
        runs.append((run, npz.parent.name.split("__")[1], scores["clean"].astype(np.float64)[keep]))
    if detector is not None:
        z = score_files(detector, [i.path for i in test]).astype(np.float64)
        runs.append((f"weights:{detector.cfg.weights_sha256[:8]}", None, z))
    for run, held_out, z in runs:
        row = {"corr_reals": round(spearman(z[real], d[real]), 3)}
        for within in WITHIN:
            mask = source == f"real/{within}"
            if mask.sum() > 1:
                row[f"corr_{within}"] = round(spearman(z[mask], d[mask]), 3)
        family = source == f"fake/{held_out}"
        if family.any():
            both = real | family
            row["auc_held_out"] = round(metrics.auc(y[both], z[both]), 3)
            row["corr_held_out"] = round(spearman(z[family], d[family]), 3)
        row["flagged_at_tpr"] = flagged_at_tpr(z, y, source)
        if held_out is None and detector is not None:  # the one calibrated run
            probs = np.array([detector.calibrate(float(v)) for v in z])
            row["flagged_photos"] = flagged_photos(probs, d, source, paths, detector.cfg.threshold)
        out["runs"][run] = row
    return out


def to_markdown(result: dict[str, Any]) -> str:
    lines = ["| source | files | median detail | AUC of less detail vs all reals |", "|---|---:|---:|---:|"]
    for name, row in result["sources"].items():
        auc = row.get("auc_less_detail")
        lines.append(f"| {name} | {row['n']} | {row['median_detail']:.2f} | {'—' if auc is None else f'{auc:.3f}'} |")
    if result["runs"]:
        within = "".join(f" real/{w} |" for w in WITHIN)
        shares = " / ".join(("all", *WITHIN))
        lines += ["", f"| run | held-out AUC | ρ(logit, detail): reals |{within} held-out family "
                  f"| reals flagged at {TPR:.0%} TPR: {shares} |",
                  "|---|---:|---:|" + "---:|" * (len(WITHIN) + 2)]  # fmt: skip
        for run, row in result["runs"].items():
            cells = [row.get("auc_held_out"), row["corr_reals"], *(row.get(f"corr_{w}") for w in WITHIN),
                     row.get("corr_held_out")]  # fmt: skip
            flagged = " / ".join("—" if (v := row["flagged_at_tpr"].get(k)) is None else f"{v:.0%}"
                                 for k in ("all", *WITHIN))  # fmt: skip
            lines.append(
                f"| {run} | " + " | ".join("—" if c is None else f"{c:.3f}" for c in cells) + f" | {flagged} |"
            )
        for run, row in result["runs"].items():
            if "flagged_photos" in row:
                named = ", ".join(f"{f['photo']} ({f['detail_rank']}/{f['of']})" for f in row["flagged_photos"])
                lines.append(f"\n{run}: whole real photos flagged (detail rank, 1 = smoothest): {named or 'none'}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a built dataset folder (WORKDIR/dataset)")
    parser.add_argument("--lofo", type=Path, help="a bench/lofo.py --out folder whose runs scored this dataset")
    parser.add_argument("--weights", type=Path, help="also score the test split with these detector weights")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--leave-out", default="", help="fake families (comma-separated) left out of every figure")
    args = parser.parse_args(argv)
    if args.lofo is not None and not args.lofo.is_dir():
        print(f"error: {args.lofo}: not a folder", file=sys.stderr)
        return 2
    try:
        detector = Detector.load(args.weights) if args.weights else None
    except AuthenticityError as exc:  # unreadable weights: one line, not a traceback
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    result = measure(args.dataset, args.lofo, detector, tuple(filter(None, args.leave_out.split(","))))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(to_markdown(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
