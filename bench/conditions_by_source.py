"""Every robustness condition, broken down by source: which reals get flagged, which fakes are missed.

Quality, not speed. ``detector eval --robustness`` gives one AUC and one flagged share per
condition for all files at once; that hides a condition that flags one kind of real image
(whole photos, say) while leaving the others. This scores a labelled folder
(``real/<source>/``, ``fake/<family>/``, such as ``WORKDIR/dataset/test``) once per
condition, the same transform on both classes, and reports per condition: the AUC over
everything, each fake family's AUC against all reals, the share of each real source
flagged at the model's threshold, and the share of fakes flagged.

    python bench/conditions_by_source.py --folder WORKDIR/dataset/test [--weights W]
        [--conditions clean,upscale_2x,...] [--out RESULT.json] [--markdown]

``--out`` also keeps every file's aggregated logit per condition (``RESULT.npz``), so another
threshold or grouping needs no second scoring.
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
from authenticity.detection.evaluate import ROBUSTNESS, load_labelled_folder, score_files
from authenticity.detection.scoring import Detector
from authenticity.errors import AuthenticityError

CLEAN = "clean"


def measure(detector: Detector, folder: Path, conditions: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(result, arrays): per-condition figures, and the labels, sources and logits behind them."""
    files = load_labelled_folder(folder)
    y = np.array([label for _, label, _ in files], dtype=np.int64)
    sources = np.array([source for _, _, source in files])
    if not (y == 0).any() or not (y == 1).any():
        raise SystemExit(f"{folder}: need real/<source>/ and fake/<family>/ images")
    families = sorted(set(sources[y == 1]))
    kinds = sorted(set(sources[y == 0]))
    rows, arrays = [], {"y": y, "source": sources, "path": np.array([str(p) for p, _, _ in files])}
    for name in conditions:
        z = score_files(detector, [p for p, _, _ in files], None if name == CLEAN else ROBUSTNESS[name])
        arrays[name] = z
        flagged = np.array([detector.calibrate(v) >= detector.cfg.threshold for v in z])
        rows.append({
            "condition": name, "auc": metrics.auc(y, z),
            "fake_flagged": float(flagged[y == 1].mean()), "real_flagged": float(flagged[y == 0].mean()),
            "family_auc": {f: metrics.auc(y[(y == 0) | (sources == f)], z[(y == 0) | (sources == f)])
                           for f in families},
            "real_flagged_by_source": {k: float(flagged[(y == 0) & (sources == k)].mean()) for k in kinds},
        })  # fmt: skip
    counts = {"real": {k: int(((y == 0) & (sources == k)).sum()) for k in kinds},
              "fake": {f: int(((y == 1) & (sources == f)).sum()) for f in families}}  # fmt: skip
    return {"folder": str(folder), "weights_sha256": detector.cfg.weights_sha256,
            "undo_enlargement": detector.cfg.undo_enlargement, "counts": counts, "rows": rows}, arrays  # fmt: skip


def parse_conditions(text: str) -> list[str]:
    """``clean,jpeg_q75,...`` as a list; an unknown or empty list exits with one line."""
    conditions = [c for c in text.split(",") if c]
    unknown = [c for c in conditions if c != CLEAN and c not in ROBUSTNESS]
    if unknown or not conditions:
        raise SystemExit(f"unknown condition {unknown[0]!r}" if unknown else "no condition given")
    return conditions


def to_markdown(result: dict[str, Any]) -> str:
    """One row per condition: AUC, fakes flagged, all reals flagged, then each real source."""
    kinds = list(result["counts"]["real"])
    sources = [f"{k} ({result['counts']['real'][k]})" for k in kinds]
    head = ["condition", "AUC", "fakes flagged", "reals flagged", *sources]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for row in result["rows"]:
        cells = [row["condition"], f"{row['auc']:.3f}", f"{row['fake_flagged']:.1%}", f"{row['real_flagged']:.1%}",
                 *(f"{row['real_flagged_by_source'][k]:.1%}" for k in kinds)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True, help="real/<source>/ and fake/<family>/ images")
    parser.add_argument("--weights", type=Path, help="detector weights (default: the shipped model)")
    parser.add_argument(
        "--undo-enlargement",
        action="store_true",
        help="score images that look enlarged at their size before (Detector undo_enlargement)",
    )
    parser.add_argument("--conditions", default=",".join([CLEAN, *ROBUSTNESS]),
                        help=f"comma-separated, from {CLEAN} and {', '.join(ROBUSTNESS)} (default: all)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the result here (JSON) and the logits beside it (.npz)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table instead of JSON")
    args = parser.parse_args(argv)
    conditions = parse_conditions(args.conditions)
    try:
        detector = Detector.load(args.weights, undo_enlargement=True if args.undo_enlargement else None)
        result, arrays = measure(detector, args.folder, conditions)
    except AuthenticityError as exc:  # unreadable weights: one line
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        np.savez(args.out.with_suffix(".npz"), **arrays)
    print(to_markdown(result) if args.markdown else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
