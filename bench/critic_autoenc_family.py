"""Add an experimental ``aecritic`` family to a built training workdir, for ``bench/lofo.py``.

The ``autoenc`` family's decoder is trained on L1 losses alone, so its reconstructions
are far smoother than their source crops, and smoothness is the cue the detector leans on
(docs/detector.md, "Fine detail"). Latent-diffusion decoders are sharp because a critic
trains against them. This family re-draws *the same source crops* as ``autoenc`` (its
twins under ``dataset/twins/<split>/real/autoenc``, so each fake keeps its crop's split
and no test crop is trained on) through a second autoencoder trained with a critic
(``train_autoencoder(adversarial=W)``: the same seed and steps by default, fit to the train
split's photos; it reads them in file-name order where ``detector train`` reads them source
by source, so its training crops are other draws from the same photos). It asks whether
fakes with camera-like detail take the smoothness cue away and carry to unseen families.
``detector train`` does not build it; a ``bench/lofo.py`` variant leaves it out with
``drop=aecritic``. A workdir that has it is refused.

``--name`` gives the family another name, so several critic weights can sit side by side;
``bench/autoenc_quality.py --family NAME`` then says how much detail each keeps.

    python bench/critic_autoenc_family.py --workdir /tmp/train_run --adversarial 0.5
    python bench/autoenc_quality.py --workdir /tmp/train_run --family aecritic --splits train,val,test
    python bench/lofo.py --workdir /tmp/train_run --out OUT --families upsample \\
        --variant base:drop=aecritic --variant critic
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
from rich.console import Console
from rich.progress import Progress

from authenticity.detection.train._autoenc import reconstruct, save_autoencoder, train_autoencoder
from authenticity.errors import AuthenticityError
from authenticity.media import load_image_bgr

FAMILY = "aecritic"
SPLITS = ("train", "val", "test")


def add_critic_family(dataset: Path, *, steps: int = 600, adversarial: float = 0.5, seed: int = 0,
                      name: str = FAMILY, progress: bool = False) -> dict[str, object]:  # fmt: skip
    """Write one fake per ``autoenc`` twin under ``<split>/fake/<name>``; returns the recipe and counts per split."""
    if not adversarial > 0:
        raise SystemExit(f"error: --adversarial {adversarial}: the critic's weight must be > 0 (0 is `autoenc` itself)")
    photos = sorted((dataset / "train" / "real" / "photo").glob("*.png"))
    twin_dirs = [(split, dataset / "twins" / split / "real" / "autoenc") for split in SPLITS]
    twins = [(split, p) for split, folder in twin_dirs for p in sorted(folder.glob("*.png"))]
    if not photos or not twins:
        hint = "build it with `detector train --autoenc-steps N`"
        raise SystemExit(f"error: {dataset}: needs train/real/photo and the autoenc family's twins; {hint}")
    if not name.isidentifier():
        raise SystemExit(f"error: --name {name!r}: use letters, digits and underscores")
    if any((dataset / split / "fake" / name).exists() for split in SPLITS):
        raise SystemExit(f"error: {dataset}: already has a family named {name}")
    taken = [f"{name}{ext}" for ext in (".json", ".safetensors") if (dataset / f"{name}{ext}").exists()]
    if taken:  # e.g. --name summary or autoencoder: the workdir's own files are never overwritten
        raise SystemExit(f"error: {dataset}: {', '.join(taken)} already exists; pick another --name")
    pixels = [load_image_bgr(p) for p in photos]
    crops = [(split, twin, load_image_bgr(twin)) for split, twin in twins]  # all read before minutes of training
    with Progress(console=Console(stderr=True), disable=not progress) as bar:
        model = train_autoencoder(pixels, steps=steps, seed=seed, adversarial=adversarial, progress=bar)
        task = bar.add_task(name, total=len(crops))
        counts = dict.fromkeys(SPLITS, 0)
        for split, twin, crop in crops:
            out = dataset / split / "fake" / name / twin.name
            out.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(out), reconstruct(model, crop)):
                raise SystemExit(f"error: {out}: could not be written")
            counts[split] += 1
            bar.advance(task)
    meta: dict[str, object] = {"steps": steps, "adversarial": adversarial, "seed": seed,
                               "train_photos": len(photos), "counts": counts}  # fmt: skip
    save_autoencoder(model, dataset / f"{name}.safetensors", meta)
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a workdir built by `detector train`")
    parser.add_argument("--steps", type=int, default=600, help="the autoencoder's steps (the shipped autoenc: 600)")
    parser.add_argument("--adversarial", type=float, default=0.5, help="the critic's weight W (> 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=FAMILY, help=f"the family's folder name (default {FAMILY})")
    args = parser.parse_args(argv)
    try:
        meta = add_critic_family(args.workdir / "dataset", steps=args.steps, adversarial=args.adversarial,
                                 seed=args.seed, name=args.name, progress=True)  # fmt: skip
    except AuthenticityError as exc:  # an unreadable photo or crop: one line, not a traceback
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
