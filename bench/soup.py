"""Average the weights of detectors fine-tuned from one initialisation: a uniform model soup.

Quality, not speed. Fine-tunings of one pretrained network that differ only in their
seed (or a little in their data) often land in one basin, where the average of their
weights scores at least as well as the best of them, in distribution and under shift
(Wortsman et al., ICML 2022, "Model soups"). Here every run of ``bench/lofo.py`` on one
workdir starts from the same GAN-stage discriminator, so its weight files can be souped
and then measured like any other detector (``detector eval --weights SOUP``).

Every floating-point tensor, batch-norm running statistics included, is the plain mean of
the inputs'; integer tensors (batch-norm step counters) are the first input's. The cfg is
the first input's architecture and pre-processing, uncalibrated (temperature 1, bias 0,
the default threshold and band), with no metrics and ``training`` naming the inputs: a
calibration or a test score of one input says nothing of the soup. Inputs must share the
architecture, trunk depth, input transform, tiling, normalisation and tile aggregation.

    python bench/soup.py --weights OUT/weights/s0.safetensors OUT/weights/s1.safetensors --out /tmp/soup.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import Network, load_detector, save_detector
from authenticity.detection.train.pipeline import SHAPE_FIELDS
from authenticity.errors import AuthenticityError

_SAME = (*SHAPE_FIELDS, "members")  # a soup averages networks of one shape, ensembles of one size


def soup(paths: Sequence[Path]) -> tuple[Network, DetectorCfg]:
    """The uniform average of ``paths`` (two or more detector weight files) and the first one's cfg."""
    if len(paths) < 2:
        raise SystemExit("error: a soup needs at least two weight files")
    loaded = [load_detector(p) for p in paths]
    first_model, first_cfg = loaded[0]
    for path, (_, cfg) in zip(paths[1:], loaded[1:], strict=True):
        differ = [k for k in _SAME if getattr(cfg, k) != getattr(first_cfg, k)]
        if differ:
            raise SystemExit(f"error: {path}: differs from {paths[0]} in {', '.join(differ)}")
    states = [model.state_dict() for model, _ in loaded]
    averaged = {
        key: torch.stack([s[key] for s in states]).mean(dim=0) if value.is_floating_point() else value
        for key, value in states[0].items()
    }
    first_model.load_state_dict(averaged, strict=True)
    fresh = DetectorCfg()
    inputs = [
        {"weights": str(path), "sha256": cfg.weights_sha256} for path, (_, cfg) in zip(paths, loaded, strict=True)
    ]
    cfg = first_cfg.model_copy(update={
        "weights_sha256": "", "temperature": fresh.temperature, "logit_bias": fresh.logit_bias,
        "threshold": fresh.threshold, "uncertain_band": fresh.uncertain_band, "metrics": {},
        "training": {"soup_of": inputs},
    })  # fmt: skip
    return first_model, cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, nargs="+", required=True, help="detector weight files (.safetensors)")
    parser.add_argument("--out", type=Path, required=True, help="the soup's weight file (its cfg goes beside it)")
    args = parser.parse_args(argv)
    try:
        model, cfg = soup(args.weights)
    except AuthenticityError as exc:  # a missing or mismatched weight file: one line, not a traceback
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    saved = save_detector(model, cfg, args.out)
    print(json.dumps({"soup": str(args.out), "sha256": saved.weights_sha256, "of": [str(p) for p in args.weights]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
