"""Add the ``esrgan`` family (crops re-drawn by a super-resolution GAN) to a finished dataset.

The shipped model never saw a generator of this kind, so its test files measure it on an
unseen family whose output has camera-like fine detail; with the family in the dataset,
``detector train --resume`` / ``bench/lofo.py`` train with it. The files are the ones
``build_dataset(sr_dir=...)`` writes for the same seed: the photos come from the dataset's own
``<split>/real/photo/`` files, which are the decoded photos themselves.

    python bench/sr_family.py --dataset /tmp/train_run/dataset --sr-dir /tmp/sr
    authenticity detector eval --real /tmp/train_run/dataset/test/real \\
        --fake /tmp/train_run/dataset/test/fake/esrgan

``--sr-dir`` holds the generator; it is fetched there from the npm registry when absent.
A dataset that already holds the family is refused (exit 2), and nothing is written.
``--figure PNG`` instead draws a few test crops beside their re-drawn fakes (and the same
4x-shrunk crop enlarged bicubically, for comparison) from a dataset that holds the family:

    python bench/sr_family.py --dataset /tmp/train_run/dataset --figure docs/img/esrgan_examples.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.progress import Progress

from authenticity.detection.config import DetectorCfg
from authenticity.detection.train._srgan import fetch_sr_generator, load_sr_generator
from authenticity.detection.train._writer import Photo, PngWriter
from authenticity.detection.train.dataset import write_esrgan
from authenticity.detection.train.sources import Split
from authenticity.errors import AuthenticityError, UsageError
from authenticity.media import load_image_bgr

FAMILY = "esrgan"


def dataset_photos(dataset: Path) -> list[Photo]:
    """Every ``<split>/real/photo/*.png`` of ``dataset`` as a :class:`Photo` with its split and name."""
    photos = []
    for split in Split:
        for path in sorted((dataset / split.value / "real" / "photo").glob("*.png")):
            source, _, stem = path.stem.partition("__")
            pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
            photos.append(Photo(source, Path(stem), split, np.asarray(pixels, np.uint8)))
    return photos


def add_family(dataset: Path, sr_dir: Path, crop_side: int = 2 * DetectorCfg().tile_size) -> str:
    """Write the family into ``dataset`` (and its twins) and record it in ``summary.json``."""
    summary_path = dataset / "summary.json"
    summary = json.loads(summary_path.read_text())
    folders = [dataset / s.value / "fake" / FAMILY for s in Split] + [dataset / "twins" / s.value for s in Split]
    if any(f.exists() for f in folders[:3]) or any((f / "real" / FAMILY).exists() for f in folders[3:]):
        raise UsageError("bench.sr_family.exists", f"{dataset} already holds the {FAMILY} family")
    photos = dataset_photos(dataset)
    if not photos:
        raise UsageError("bench.sr_family.no_photos", f"{dataset}: no <split>/real/photo/*.png files")
    net = load_sr_generator(fetch_sr_generator(sr_dir))
    writer = PngWriter(dataset)
    with Progress() as bar:
        note = write_esrgan(writer, photos, dataset, net, per_family=int(summary["per_family"]),
                            crop_side=crop_side, seed=int(summary["seed"]), bar=bar)  # fmt: skip
    for split, by_cls in writer.counts.items():
        for cls, by_src in by_cls.items():
            summary["counts"].setdefault(split, {}).setdefault(cls, {}).update(by_src)
            totals = summary["totals"].setdefault(split, {})
            totals[cls] = totals.get(cls, 0) + sum(by_src.values())
    summary["notes"].append(note + " (added by bench/sr_family.py)")
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return note


def draw_examples(dataset: Path, png: Path, n: int = 2) -> Path:
    """``n`` test fakes in name order, each row: source crop, bicubic 4x of its shrunk copy, the GAN's 4x."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fakes = sorted((dataset / "test" / "fake" / FAMILY).glob("*.png"))[:n]
    if not fakes:
        raise UsageError("bench.sr_family.missing", f"{dataset}: no test/fake/{FAMILY} files (add the family first)")
    fig = Figure(figsize=(9, 3 * len(fakes)))
    for row, fake in enumerate(fakes):
        real = load_image_bgr(dataset / "twins" / "test" / "real" / FAMILY / fake.name)
        h, w = real.shape[:2]
        small = cv2.resize(real, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        bicubic = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        drawn = load_image_bgr(fake)
        for col, (image, title) in enumerate(((real, "real crop"), (bicubic, "4x shrunk, bicubic 4x"),
                                               (drawn, "4x shrunk, GAN 4x (esrgan)"))):  # fmt: skip
            ax = fig.add_subplot(len(fakes), 3, 3 * row + col + 1)
            ax.imshow(image[:, :, ::-1])
            ax.set_axis_off()
            ax.set_title(title if row == 0 else "", fontsize=9)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, format="png", dpi=70)
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a finished dataset folder (WORKDIR/dataset)")
    parser.add_argument("--sr-dir", type=Path, help="where the generator is (fetched if absent)")
    parser.add_argument("--figure", type=Path, help="draw test examples of the family to this PNG (adds nothing)")
    parser.add_argument("--crop-side", type=int, default=2 * DetectorCfg().tile_size,
                        help="twice the dataset's tile, as build_dataset crops (default %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    if not (args.dataset / "summary.json").is_file():
        print(f"error: {args.dataset}: no summary.json (not a finished dataset)", file=sys.stderr)
        return 2
    if (args.figure is None) == (args.sr_dir is None):
        print("error: pass --sr-dir (add the family) or --figure (draw it)", file=sys.stderr)
        return 2
    torch.set_num_threads(min(2, torch.get_num_threads()))
    try:
        if args.figure is not None:
            print(draw_examples(args.dataset, args.figure))
            return 0
        print(add_family(args.dataset, args.sr_dir, args.crop_side))
    except AuthenticityError as err:
        print(f"error: {err.diagnostics()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
