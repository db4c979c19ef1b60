"""How often the enlargement estimate fires, per real source and fake family, per condition.

Quality, not speed, and no network: ``detection.resampling.enlargement_factor`` on every file
of a labelled folder (``real/<source>/``, ``fake/<family>/``, such as
``WORKDIR/dataset/test``), as it is and after each robustness condition (the same transform
on both classes, as ``detector eval --robustness`` applies it). For each condition and group
it reports the share of files found enlarged (factor above 1) and the median factor found
among those. On a clean split the share is the estimate's false alarms, except where a source
really was enlarged before it reached the dataset; after ``upscale_2x`` it is the hit rate.

    python bench/enlargement_found.py --folder WORKDIR/dataset/test [--conditions clean,upscale_2x,...]
        [--markdown]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authenticity.detection.evaluate import ROBUSTNESS, load_labelled_folder
from authenticity.detection.resampling import enlargement_factor
from authenticity.errors import AuthenticityError
from authenticity.media import load_image_bgr
from bench.conditions_by_source import CLEAN, parse_conditions

MAX_PIXELS = 100_000_000
DEFAULT_CONDITIONS = (CLEAN, "upscale_2x", "fit512_jpeg90", "jpeg_q75", "resize_0.5", "blur_sigma1")


def measure(folder: Path, conditions: list[str]) -> dict[str, Any]:
    """Per condition, per group (``real/<source>``, ``fake/<family>``): n, share found, median factor found."""
    files = load_labelled_folder(folder)
    if not files:
        raise SystemExit(f"{folder}: no real/<source>/ or fake/<family>/ images")
    groups = [f"{'fake' if label else 'real'}/{source}" for _, label, source in files]
    found: dict[str, list[float]] = {name: [] for name in conditions}
    for path, _, _ in track(files, description="estimating", disable=not sys.stderr.isatty()):
        bgr = load_image_bgr(path, max_pixels=MAX_PIXELS)  # decoded as scoring decodes it
        for name in conditions:
            image = bgr if name == CLEAN else ROBUSTNESS[name](bgr)
            found[name].append(enlargement_factor(image))
    rows = []
    for name in conditions:
        factors = np.array(found[name])
        by_group = {}
        for group in sorted(set(groups)):
            mine = factors[np.array(groups) == group]
            hits = mine[mine > 1.0]
            by_group[group] = {"n": int(mine.size), "found": round(float((mine > 1.0).mean()), 4),
                               "median_factor": round(float(np.median(hits)), 3) if hits.size else None}  # fmt: skip
        rows.append({"condition": name, "groups": by_group})
    return {"folder": str(folder), "rows": rows}


def to_markdown(result: dict[str, Any]) -> str:
    groups = list(result["rows"][0]["groups"])
    counts = [result["rows"][0]["groups"][g]["n"] for g in groups]
    lines = ["| condition | " + " | ".join(f"{g} ({n})" for g, n in zip(groups, counts, strict=True)) + " |",
             "|---|" + "---:|" * len(groups)]  # fmt: skip
    for row in result["rows"]:
        cells = []
        for g in groups:
            cell = row["groups"][g]
            factor = f" ({cell['median_factor']:g}×)" if cell["median_factor"] is not None else ""
            cells.append(f"{100 * cell['found']:.0f} %{factor}")
        lines.append(f"| {row['condition']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True, help="real/<source>/ and fake/<family>/ images")
    parser.add_argument("--conditions", default=",".join(DEFAULT_CONDITIONS),
                        help=f"comma-separated: clean and any of {', '.join(ROBUSTNESS)}")  # fmt: skip
    parser.add_argument("--markdown", action="store_true", help="a Markdown table instead of JSON")
    args = parser.parse_args(argv)
    conditions = parse_conditions(args.conditions)
    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder}: not a folder")
    try:
        result = measure(args.folder, conditions)
    except AuthenticityError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    if args.markdown:
        print(to_markdown(result), end="")
    else:
        import json

        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
