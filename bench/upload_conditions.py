"""Whole real photos against fakes made at 256 px, under a platform's upload conditions.

Quality, not speed. A platform shrinks and re-encodes every upload, real or not, so the
question is how the detector fares on whole photos after that. From a built dataset this
links the ``real/photo`` folders of the chosen splits and those splits' ``fake`` folders
of the families made at 256 px (``autoenc``, ``blend``, ``cyclegan``, ``upsample``) into one
labelled folder, runs ``detector eval --robustness`` on it, and prints one row per
condition: AUC, TPR at 1 % FPR, and the share of real photos and of fakes flagged at the
model's threshold. The clean row is the baseline. The families made smaller (32–64 px:
``gan``, ``dcgan``, ``sd``) are left out, since a long-side cap cannot touch them.

    python bench/upload_conditions.py --dataset WORKDIR/dataset [--splits test,val] [--weights W] [--markdown]

The default splits are ``test`` and ``val``: no file of either was trained on, but the
validation split is where the temperature and bias were fitted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from authenticity.detection.evaluate import Metrics, evaluate
from authenticity.detection.scoring import Detector
from authenticity.errors import AuthenticityError

FAMILIES_256 = ("autoenc", "blend", "cyclegan", "upsample")


def link_folders(dataset: Path, splits: list[str], root: Path) -> tuple[Path, Path]:
    """``root/real/photo_<split>`` and ``root/fake/<family>_<split>`` as links into *dataset*."""
    found = 0
    for cls in ("real", "fake"):
        (root / cls).mkdir(parents=True, exist_ok=True)
    for split in splits:
        pairs = [("real", "photo"), *(("fake", family) for family in FAMILIES_256)]
        for cls, source in pairs:
            target = dataset / split / cls / source
            if target.is_dir():
                link = root / cls / f"{source}_{split}"
                link.symlink_to(target.resolve(), target_is_directory=True)
                found += cls == "real"
    if not found:
        raise SystemExit(f"error: {dataset}: no real/photo folder in split(s) {', '.join(splits)}")
    return root / "real", root / "fake"


def _row(name: str, m: Metrics) -> dict[str, Any]:
    return {"condition": name, "auc": round(m.auc, 3), "tpr_at_1pct_fpr": round(m.tpr_at_1pct_fpr, 3),
            "real_flagged": round(m.real_flagged, 3), "fake_flagged": round(m.fake_flagged, 3)}  # fmt: skip


def measure(detector: Detector, dataset: Path, splits: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="upload_conditions_") as tmp:
        real, fake = link_folders(dataset, splits, Path(tmp))
        report = evaluate(detector, real, fake, robustness=True, progress=sys.stderr.isatty())
    rows = [_row("clean", report.overall), *(_row(k, v) for k, v in report.robustness.items())]
    return {"splits": splits, "weights_sha256": detector.cfg.weights_sha256,
            "undo_enlargement": detector.cfg.undo_enlargement, "n_real": report.overall.n_real,
            "n_fake": report.overall.n_fake, "rows": rows}  # fmt: skip


def to_markdown(result: dict[str, Any]) -> str:
    lines = [f"{result['n_real']} real photos, {result['n_fake']} fakes ({', '.join(FAMILIES_256)}); "
             f"splits {', '.join(result['splits'])}", "",
             "| condition | AUC | TPR@1%FPR | real photos flagged | fakes flagged |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in result["rows"]:
        lines.append(f"| {r['condition']} | {r['auc']:.3f} | {r['tpr_at_1pct_fpr']:.3f} | "
                     f"{100 * r['real_flagged']:.1f} % | {100 * r['fake_flagged']:.1f} % |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a built dataset folder (WORKDIR/dataset)")
    parser.add_argument("--splits", default="test,val", help="comma-separated splits (default: test,val)")
    parser.add_argument("--weights", type=Path, help="detector weights (default: the shipped model)")
    parser.add_argument(
        "--undo-enlargement",
        action="store_true",
        help="score images that look enlarged at their size before (Detector undo_enlargement)",
    )
    parser.add_argument("--markdown", action="store_true", help="a Markdown table instead of JSON")
    args = parser.parse_args(argv)
    try:
        detector = Detector.load(args.weights, undo_enlargement=True if args.undo_enlargement else None)
        result = measure(detector, args.dataset, [s for s in args.splits.split(",") if s])
    except AuthenticityError as exc:  # unreadable weights, or a class with no image: one line
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    print(to_markdown(result) if args.markdown else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
