"""Leave-one-family-out and initialisation ablations with linear probes on frozen features.

Fine-tuning the full network once per held-out family does not fit a 2-core budget, so
the generalisation question is asked of the *features*: for each initialisation
(ImageNet, the adversarial stage's discriminator, random), a logistic-regression probe is
trained on image features from the training split with one fake family removed, and
tested on the test split's reals against that unseen family — clean and after JPEG q=75
applied to both classes. The same protocol with every family in training gives the
in-distribution row. This measures what each initialisation brings, honestly, but it is
not the shipped (fine-tuned) model's LOFO score; docs/detector.md says so next to it.

>>> # table = run_ablation(Path("train/dataset"), Path("train/gan"), DetectorCfg())
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from rich.progress import Progress
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from authenticity.detection import metrics
from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import DetectorNet
from authenticity.detection.preprocess import image_tiles
from authenticity.detection.train.augment import jpeg
from authenticity.detection.train.finetune import Item, load_items
from authenticity.detection.train.pipeline import initialise

__all__ = ["INITS", "image_features", "lofo_table", "run_ablation"]

INITS = ("imagenet", "gan", "scratch")
Transform = Callable[[NDArray[np.uint8]], NDArray[np.uint8]]


@torch.inference_mode()
def image_features(
    model: DetectorNet,
    cfg: DetectorCfg,
    items: Sequence[Item],
    *,
    max_tiles: int = 4,
    transform: Transform | None = None,
    progress: Progress | None = None,
) -> NDArray[np.float32]:
    """Mean backbone feature over up to ``max_tiles`` native-resolution tiles per image."""
    tiling = cfg.model_copy(update={"max_tiles": max_tiles})
    task = progress.add_task("features", total=len(items)) if progress else None
    out = []
    for item in items:
        bgr = np.asarray(cv2.imread(str(item.path), cv2.IMREAD_COLOR), dtype=np.uint8)
        if transform is not None:
            bgr = transform(bgr)
        tiles, _ = image_tiles(np.ascontiguousarray(bgr), tiling)
        out.append(model.features(torch.from_numpy(tiles)).mean(0).numpy())
        if progress is not None and task is not None:
            progress.advance(task)
    return np.stack(out).astype(np.float32)


def _probe(x: NDArray[np.float32], y: NDArray[np.int64]) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(x, y)


def lofo_table(train: tuple[NDArray[np.float32], list[Item]], tests: dict[str, tuple[NDArray[np.float32], list[Item]]]
               ) -> dict[str, dict[str, float]]:  # fmt: skip
    """AUC per held-out family (and ``all`` in-distribution) for each test condition."""
    x_train, train_items = train
    y_train = np.array([i.label for i in train_items])
    families = sorted({i.source for i in train_items if i.label == 1})
    rows: dict[str, dict[str, float]] = {}
    for held_out in [*families, "all"]:
        keep = np.array([i.label == 0 or held_out == "all" or i.source != held_out for i in train_items])
        probe = _probe(x_train[keep], y_train[keep])
        row = {}
        for condition, (x_test, test_items) in tests.items():
            mask = np.array([i.label == 0 or held_out == "all" or i.source == held_out for i in test_items])
            y = np.array([i.label for i in test_items])[mask]
            row[condition] = metrics.auc(y, probe.decision_function(x_test[mask]))
        rows[held_out] = row
    return rows


def run_ablation(data_dir: Path, gan_dir: Path, cfg: DetectorCfg, *, inits: Sequence[str] = INITS,
                 out: Path | None = None, progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """All initialisations × held-out families × {clean, JPEG q=75}; optional JSON output."""
    train_items, test_items = load_items(data_dir, "train"), load_items(data_dir, "test")
    result: dict[str, Any] = {"protocol": __doc__.split("\n\n")[1] if __doc__ else "", "inits": {}}
    with Progress(disable=not progress, transient=True) as bar:
        for init in inits:
            torch.manual_seed(0)
            model = initialise(cfg, init, gan_dir).eval()
            x_train = image_features(model, cfg, train_items, progress=bar)
            tests = {
                "clean": (image_features(model, cfg, test_items, progress=bar), test_items),
                "jpeg75": (image_features(model, cfg, test_items, transform=lambda b: jpeg(b, 75), progress=bar),
                           test_items),
            }  # fmt: skip
            result["inits"][init] = lofo_table((x_train, train_items), tests)
    if out is not None:
        out.write_text(json.dumps(result, indent=2))
    return result


def to_markdown(result: dict[str, Any]) -> str:
    """One table: rows = held-out family, columns = init × condition."""
    inits = list(result["inits"])
    conditions = ["clean", "jpeg75"]
    families = list(next(iter(result["inits"].values())))
    head = "| held-out family | " + " | ".join(f"{i} {c}" for i in inits for c in conditions) + " |"
    sep = "|---|" + "---:|" * (len(inits) * len(conditions))
    lines = [head, sep]
    for family in families:
        cells = [f"{result['inits'][i][family][c]:.3f}" for i in inits for c in conditions]
        label = "all (in-distribution)" if family == "all" else family
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
