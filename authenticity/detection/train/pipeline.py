"""``authenticity detector train``: the whole recipe, resumable, with fixed seeds.

1. Adversarial stage: a small generator against the ImageNet-initialised detector network
   as discriminator (``gan.py``); its checkpoints become a fake family, its final
   discriminator initialises the detector (``init="gan"``).
2. Dataset: real photos (split by file) and the fake zoo, materialised as PNG (``dataset.py``).
3. Detector stage: fine-tuning with identical augmentation on both classes and PGD
   hardening (``finetune.py``).
4. Calibration: temperature and bias fitted on the validation split (image-level logits,
   aggregated exactly as in scoring); metrics on the test split; weights + cfg saved.

Every stage writes into ``workdir`` and is skipped or resumed when its output exists.

>>> # cfg = run_training(PipelineParams(workdir=Path("train"), out=Path("data/detector.safetensors")))
"""

from __future__ import annotations

import json
import platform
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors.torch import load_file

from authenticity.detection import metrics
from authenticity.detection._runtime import tune_cpu
from authenticity.detection.config import DetectorCfg, InputTransform
from authenticity.detection.evaluate import score_files
from authenticity.detection.model import (
    DetectorNet,
    build_model,
    imagenet_lite0_state_dict,
    save_detector,
    truncated_state,
)
from authenticity.detection.scoring import Detector
from authenticity.detection.train._autoenc import AE_FILE, AE_RECIPE
from authenticity.detection.train.dataset import DATASET_RECIPE, build_dataset
from authenticity.detection.train.finetune import Item, TrainParams, finetune, load_items
from authenticity.detection.train.gan import DISCRIMINATOR_FILE, gan_finished, train_gan
from authenticity.detection.train.sources import Split, find_shared, real_sources, split_sources
from authenticity.errors import ConfigError

__all__ = [
    "QUICK_AUTOENC_STEPS",
    "PipelineParams",
    "cpu_model",
    "dataset_reusable",
    "initialise",
    "quick_params",
    "reads_real_sources",
    "run_training",
]


@dataclass(frozen=True)
class PipelineParams:
    workdir: Path
    out: Path
    shared: Path | None = None
    init: str = "gan"  # gan | imagenet | scratch
    depth: int = 0  # backbone stages kept (DetectorCfg.depth; 0 = the whole trunk)
    input_transform: InputTransform = "rgb"  # what the trunk sees (DetectorCfg.input_transform: rgb | npr)
    device: str = "cpu"  # where fine-tuning runs (cuda where there is one)
    gan_steps: int = 400
    gan_batch: int = 16
    per_family: int = 400
    autoenc_steps: int = 0  # > 0 adds the autoenc family (the shipped recipe: AUTOENC_STEPS); 0 = without it
    autoenc_adversarial: float = 0.0  # the autoencoder's critic weight (0 = L1 losses only)
    cyclegan_cap: int = 150
    finetune: TrainParams = field(default_factory=TrainParams)
    seed: int = 0
    resume: bool = True
    progress: bool = True
    threads: int = 2
    reviewed: Path | None = None  # an `authenticity audit export-labelled` folder: real/ and fake/


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's model name, with its x86 family and model where the kernel gives them,
    recorded with the weights: float results, and so the GAN stage's samples, differ between
    CPU types. Two machines both named "AMD EPYC" did differ (docs/detector.md), so the name
    alone is not enough.

    >>> cpu_model()  # doctest: +SKIP
    'AMD EPYC, family 25 model 17'
    """
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if fields.get("model name"):
        family, model = fields.get("cpu family"), fields.get("model")
        return fields["model name"] + (f", family {family} model {model}" if family and model else "")
    for key in ("Hardware", "CPU part"):  # what Arm kernels print
        if fields.get(key):
            return fields[key] if key != "CPU part" else f"Arm CPU part {fields[key]}"
    return platform.processor() or "unknown CPU"


def initialise(cfg: DetectorCfg, init: str, gan_dir: Path | None) -> DetectorNet:
    """A detector network initialised from the GAN discriminator, ImageNet, or nothing."""
    model = build_model(cfg)
    if init == "imagenet":
        backbone = {f"backbone.{k}": v for k, v in imagenet_lite0_state_dict().items()}
        _load_kept(model, backbone, prefix="backbone.")
    elif init == "gan":
        if gan_dir is None or not (gan_dir / DISCRIMINATOR_FILE).is_file():
            raise ConfigError("detector.init.missing", "GAN-discriminator init needs a finished adversarial stage")
        _load_kept(model, load_file(str(gan_dir / DISCRIMINATOR_FILE)), prefix="" if not cfg.depth else "backbone.")
    elif init != "scratch":
        raise ConfigError("detector.init.unknown", f"unknown init {init!r}: use gan, imagenet or scratch")
    return model


def _load_kept(model: DetectorNet, state: dict[str, torch.Tensor], prefix: str) -> None:
    """Load a full network's weights into ``model``; every kept parameter under ``prefix`` must be covered."""
    kept = truncated_state(state, model)
    missing = [k for k in model.state_dict() if k.startswith(prefix) and k not in kept]
    if missing:
        raise ConfigError("detector.init.mismatch", f"init weights do not cover {missing[0]} ({len(missing)} missing)")
    model.load_state_dict(kept, strict=False)


def _bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), disable=not enabled, transient=False)  # fmt: skip


def _image_logits(detector: Detector, items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    logits = score_files(detector, [i.path for i in items])
    return np.asarray(logits, np.float64), np.asarray([i.label for i in items], np.int64)


def _split_metrics(cfg: DetectorCfg, z: np.ndarray, y: np.ndarray, items: list[Item]) -> dict[str, Any]:
    p = 1.0 / (1.0 + np.exp(-(z + cfg.logit_bias) / cfg.temperature))
    out: dict[str, Any] = {
        "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
        "auc": metrics.auc(y, z), "ap": metrics.average_precision(y, z),
        "tpr_at_1pct_fpr": metrics.tpr_at_fpr(y, z, 0.01),
        "accuracy": metrics.accuracy_at(y, p, cfg.threshold), "ece": metrics.expected_calibration_error(y, p),
    }  # fmt: skip
    real = y == 0
    per_family = {}
    for family in sorted({i.source for i in items if i.label == 1}):
        mask = real | np.array([i.label == 1 and i.source == family for i in items])
        per_family[family] = {"n": int((mask & ~real).sum()), "auc": metrics.auc(y[mask], z[mask])}
    out["per_family"] = per_family
    return out


def dataset_reusable(summary: Path, params: PipelineParams) -> bool:
    """Resume an existing dataset only if the current code built it (``DATASET_RECIPE``) and
    its ``autoenc`` family is the one this run asks for.

    That is: present exactly when asked for, and then made by an autoencoder of the current
    recipe (``AE_RECIPE``), steps and critic weight (its ``autoencoder.json``). Otherwise
    ``--autoenc-steps 600`` on a workdir built without it would silently train and test
    without the family, or with another autoencoder's; the dataset is rebuilt instead.
    """
    if not (params.resume and summary.is_file()):
        return False
    built = json.loads(summary.read_text())
    if built.get("recipe", 0) != DATASET_RECIPE:  # written by other dataset code: its files may differ
        return False
    counts = built.get("counts", {})
    has_autoenc = any("autoenc" in by_cls.get("fake", {}) for by_cls in counts.values())
    if has_autoenc != (params.autoenc_steps > 0):
        return False
    meta_file = summary.parent / Path(AE_FILE).with_suffix(".json").name
    meta = json.loads(meta_file.read_text()) if has_autoenc and meta_file.is_file() else {}
    made_with = (meta.get("recipe", 1), meta.get("steps"), float(meta.get("adversarial", 0.0)))
    return not has_autoenc or made_with == (AE_RECIPE, params.autoenc_steps, params.autoenc_adversarial)


def reads_real_sources(params: PipelineParams) -> bool:
    """Whether this run reads the real photos (``../shared``, Debian's samples): it trains
    or continues the GAN stage, or builds the dataset. A run that resumes both does not."""
    gan_stage = params.init == "gan" or params.gan_steps > 0
    gan_done = params.resume and gan_finished(params.workdir / "gan", params.gan_steps, params.seed)
    return (gan_stage and not gan_done) or not dataset_reusable(params.workdir / "dataset" / "summary.json", params)


def run_training(params: PipelineParams) -> DetectorCfg:
    """Run (or resume) every stage; returns the saved cfg."""
    started = time.monotonic()
    torch.set_num_threads(params.threads)
    tune_cpu()
    torch.manual_seed(params.seed)
    np.random.seed(params.seed)
    params.workdir.mkdir(parents=True, exist_ok=True)
    shared = find_shared(params.shared)
    cfg = DetectorCfg(depth=params.depth, input_transform=params.input_transform)
    timings: dict[str, float] = {}

    gan_dir = params.workdir / "gan"
    t = time.monotonic()
    if params.init == "gan" or params.gan_steps > 0:
        splits = split_sources(real_sources(shared), seed=params.seed)
        reals = [p for paths in splits[Split.TRAIN].values() for p in paths]
        train_gan(cfg, reals, gan_dir, steps=params.gan_steps, batch=params.gan_batch, seed=params.seed,
                  checkpoint_every=50, resume=params.resume, progress=params.progress)  # fmt: skip
    timings["gan_s"] = time.monotonic() - t

    t = time.monotonic()
    data_dir = params.workdir / "dataset"
    if not dataset_reusable(data_dir / "summary.json", params):
        build_dataset(shared, data_dir, cfg=cfg, per_family=params.per_family, seed=params.seed,
                      gan_dir=gan_dir if params.gan_steps > 0 else None, progress=params.progress,
                      cyclegan_cap=params.cyclegan_cap, overwrite=True, reviewed=params.reviewed,
                      autoenc_steps=params.autoenc_steps,
                      autoenc_adversarial=params.autoenc_adversarial)  # fmt: skip
    summary = json.loads((data_dir / "summary.json").read_text())
    timings["dataset_s"] = time.monotonic() - t

    t = time.monotonic()
    model = initialise(cfg, params.init, gan_dir)
    items = load_items(data_dir, "train", params.finetune.exclude_families)
    with _bar(params.progress) as bar:
        task = bar.add_task("fine-tuning detector", total=params.finetune.steps)
        model = finetune(model, cfg, items, params.finetune, params.workdir, resume=params.resume,
                         on_step=lambda step, _loss: bar.update(task, completed=step),
                         device=params.device)  # fmt: skip
    timings["finetune_s"] = time.monotonic() - t

    t = time.monotonic()
    detector = Detector(model, cfg)
    val = load_items(data_dir, "val", params.finetune.exclude_families)
    z_val, y_val = _image_logits(detector, val)
    temperature, bias = metrics.fit_temperature(z_val, y_val)
    cfg = cfg.model_copy(update={"temperature": float(temperature), "logit_bias": float(bias)})
    test = load_items(data_dir, "test")
    detector = Detector(model, cfg)
    z_test, y_test = _image_logits(detector, test)
    timings["calibrate_eval_s"] = time.monotonic() - t
    timings["total_s"] = time.monotonic() - started
    cfg = cfg.model_copy(update={
        "training": {
            "command": "authenticity detector train", "init": params.init, "seed": params.seed,
            "gan_steps": params.gan_steps, "per_family": params.per_family, "autoenc_steps": params.autoenc_steps,
            "autoenc_adversarial": params.autoenc_adversarial,
            "finetune": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(params.finetune).items()},
            "train_counts": dict(Counter(f"{'fake' if i.label else 'real'}/{i.source}" for i in items)),
            "dataset": summary.get("counts", {}), "timings_s": {k: round(v, 1) for k, v in timings.items()},
            "machine": f"{platform.machine()} ({cpu_model()}), {torch.get_num_threads()} threads, "
                       f"torch {torch.__version__}, CPU kernels {torch.backends.cpu.get_cpu_capability()}"
                       + (f", fine-tuned on {torch.cuda.get_device_name()}" if params.device == "cuda" else ""),
        },
        "metrics": {"val": _split_metrics(cfg, z_val, y_val, val), "test": _split_metrics(cfg, z_test, y_test, test)},
    })  # fmt: skip
    return save_detector(model, cfg, params.out)


QUICK_AUTOENC_STEPS = 2  # the autoencoder of a --quick run


def quick_params(workdir: Path, out: Path, shared: Path | None = None) -> PipelineParams:
    """A tiny end-to-end run (seconds to a minute) for tests and smoke checks."""
    return PipelineParams(workdir=workdir, out=out, shared=shared, gan_steps=2, gan_batch=4, per_family=12,
                          autoenc_steps=QUICK_AUTOENC_STEPS, cyclegan_cap=1, progress=False,
                          finetune=replace(TrainParams(), steps=2, batch=4, checkpoint_every=1))  # fmt: skip
