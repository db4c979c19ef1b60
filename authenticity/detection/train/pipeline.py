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
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from safetensors.torch import load_file

from authenticity.detection import metrics
from authenticity.detection._runtime import tune_cpu
from authenticity.detection.config import DetectorCfg, InputTransform
from authenticity.detection.evaluate import score_files
from authenticity.detection.model import (
    DetectorEnsemble,
    DetectorNet,
    Network,
    build_model,
    imagenet_lite0_state_dict,
    load_detector,
    save_detector,
    truncated_state,
)
from authenticity.detection.scoring import Detector
from authenticity.detection.train._autoenc import AE_FILE, AE_RECIPE
from authenticity.detection.train._srgan import SR_PACKAGE, fetch_sr_generator
from authenticity.detection.train.dataset import DATASET_RECIPE, build_dataset
from authenticity.detection.train.finetune import Item, TrainParams, finetune, load_items
from authenticity.detection.train.gan import DISCRIMINATOR_FILE, gan_finished, train_gan
from authenticity.detection.train.sources import Split, extra_photos, find_shared, real_sources, split_sources
from authenticity.errors import ConfigError

__all__ = [
    "QUICK_AUTOENC_STEPS",
    "SHAPE_FIELDS",
    "PipelineParams",
    "calibrate",
    "combine",
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
    members: int = 1  # > 1: that many fine-tunings (seeds seed, seed+1, ...) scored as one ensemble
    extra_real: Path | None = None  # a folder of further real photos for the dataset (not the GAN stage)
    sr_family: bool = False  # the esrgan family (generator fetched into WORKDIR/sr_model); on in `detector train`


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


def _advance(bar: Progress, task: TaskID, step: int, _loss: float) -> None:
    bar.update(task, completed=step)


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
    """Resume an existing dataset only if the current code built it (``DATASET_RECIPE``), from
    the ``--extra-real`` photos this run asks for (by file name), it holds the ``esrgan`` family
    exactly when this run asks for it, and its ``autoenc`` family is the one this run asks for.

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
    extra = tuple(p.name for p in extra_photos(params.extra_real))
    if tuple(built.get("extra_real", ())) != extra:  # other extra photos (or none) asked for
        return False
    counts = built.get("counts", {})
    if any("esrgan" in by_cls.get("fake", {}) for by_cls in counts.values()) != params.sr_family:
        return False
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
                      autoenc_steps=params.autoenc_steps, extra_real=params.extra_real,
                      autoenc_adversarial=params.autoenc_adversarial,
                      sr_dir=fetch_sr_generator(params.workdir / "sr_model") if params.sr_family else None)  # fmt: skip
    summary = json.loads((data_dir / "summary.json").read_text())
    timings["dataset_s"] = time.monotonic() - t

    t = time.monotonic()
    items = load_items(data_dir, "train", params.finetune.exclude_families)
    nets = []
    with _bar(params.progress) as bar:
        for k in range(params.members):  # member k: seed + k; the first one's checkpoints sit in the workdir itself
            member = replace(params.finetune, seed=params.finetune.seed + k)
            where = params.workdir if k == 0 else params.workdir / f"member{k}"
            where.mkdir(parents=True, exist_ok=True)
            what = "fine-tuning detector" + (f" (member {k + 1} of {params.members})" if params.members > 1 else "")
            task = bar.add_task(what, total=member.steps)
            if k:  # a random head (or trunk) starts from the member's seed, resumed or not
                torch.manual_seed(member.seed)
            nets.append(finetune(initialise(cfg, params.init, gan_dir), cfg, items, member, where,
                                 resume=params.resume, device=params.device,
                                 on_step=partial(_advance, bar, task)))  # fmt: skip
    model: Network = nets[0] if params.members == 1 else DetectorEnsemble(nets)
    # trained on images shrunk back where they looked enlarged: calibrated and scored the same way
    cfg = cfg.model_copy(update={"members": params.members, "undo_enlargement": params.finetune.undo_enlargement})
    timings["finetune_s"] = time.monotonic() - t

    t = time.monotonic()
    cfg = calibrate(model, cfg, data_dir, params.finetune.exclude_families)
    timings["calibrate_eval_s"] = time.monotonic() - t
    timings["total_s"] = time.monotonic() - started
    cfg = cfg.model_copy(update={
        "training": {
            "command": "authenticity detector train", "init": params.init, "seed": params.seed,
            "gan_steps": params.gan_steps, "per_family": params.per_family, "autoenc_steps": params.autoenc_steps,
            "autoenc_adversarial": params.autoenc_adversarial,
            **({"sr_family": SR_PACKAGE} if params.sr_family else {}),
            "finetune": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(params.finetune).items()},
            **({"member_seeds": [params.finetune.seed + k for k in range(params.members)]}
               if params.members > 1 else {}),
            "train_counts": dict(Counter(f"{'fake' if i.label else 'real'}/{i.source}" for i in items)),
            "dataset": summary.get("counts", {}), "extra_real": summary.get("extra_real", []),
            "timings_s": {k: round(v, 1) for k, v in timings.items()},
            "machine": f"{platform.machine()} ({cpu_model()}), {torch.get_num_threads()} threads, "
                       f"torch {torch.__version__}, CPU kernels {torch.backends.cpu.get_cpu_capability()}"
                       + (f", fine-tuned on {torch.cuda.get_device_name()}" if params.device == "cuda" else ""),
        },
    })  # fmt: skip
    return save_detector(model.cpu(), cfg, params.out)


def calibrate(model: Network, cfg: DetectorCfg, data_dir: Path, exclude: tuple[str, ...] = ()) -> DetectorCfg:
    """``cfg`` with temperature and bias fitted on the dataset's val split (image-level logits,
    aggregated as in scoring; ``exclude``'s fakes left out, as in training; each class
    weighted as a half, so a probability of 0.5 means even odds whatever the split's share
    of fakes) and the metrics of the val and test splits."""
    detector = Detector(model, cfg)
    val = load_items(data_dir, "val", exclude)
    z_val, y_val = _image_logits(detector, val)
    # balanced: the threshold must not move with how many fake families the val split holds
    temperature, bias = metrics.fit_temperature(z_val, y_val, balanced=True)
    cfg = cfg.model_copy(update={"temperature": float(temperature), "logit_bias": float(bias)})
    test = load_items(data_dir, "test")
    z_test, y_test = _image_logits(Detector(model, cfg), test)
    scores = {"val": _split_metrics(cfg, z_val, y_val, val), "test": _split_metrics(cfg, z_test, y_test, test)}
    return cfg.model_copy(update={"metrics": scores})


# What fine-tunings must share to be averaged (weights or logits): architecture, input, tiling, aggregation.
SHAPE_FIELDS = ("arch", "depth", "input_transform", "tile_size", "max_tiles", "mean", "std", "aggregate")
_AGREE = (*SHAPE_FIELDS, "threshold", "uncertain_band")  # an ensemble's members also decide alike


def _excluded(cfg: DetectorCfg) -> tuple[str, ...]:
    """The fake families a fine-tuning left out (``training.finetune.exclude_families``; none if unrecorded)."""
    finetune = cfg.training.get("finetune")
    return tuple(sorted(finetune.get("exclude_families", ()))) if isinstance(finetune, dict) else ()


def combine(weights: list[Path], workdir: Path, out: Path) -> DetectorCfg:
    """One ensemble of the networks in ``weights`` (each a single network or an ensemble, all of
    one architecture and pre-processing), calibrated on ``workdir``'s dataset and saved to ``out``.

    The fine-tunings may come from anywhere (``detector train --seed k``, ``bench/lofo.py`` on a
    GPU): the ensemble's calibration and metrics are its own, on the val and test splits of the
    dataset they were trained on. Nothing is written unless every input loads and agrees.
    """
    if len(weights) < 2:
        raise ConfigError("detector.members.invalid", "an ensemble needs at least two weight files")
    data_dir = workdir / "dataset"
    for split in ("val", "test"):
        if not (data_dir / split).is_dir():
            raise ConfigError("detector.data.missing", f"{data_dir / split}: missing (a `detector train` workdir)")
    loaded = [load_detector(path) for path in weights]
    first = loaded[0][1]
    for path, (_, cfg) in zip(weights[1:], loaded[1:], strict=True):
        differ = [k for k in _AGREE if getattr(cfg, k) != getattr(first, k)]
        if _excluded(cfg) != _excluded(first):
            differ.append("excluded families")
        if differ:
            raise ConfigError("detector.members.mismatch", f"{path}: differs from {weights[0]} in {', '.join(differ)}")
    nets: list[DetectorNet] = []
    for net, _ in loaded:  # an ensemble among the inputs gives its members
        nets += [cast(DetectorNet, m) for m in net.members] if isinstance(net, DetectorEnsemble) else [net]
    ensemble = DetectorEnsemble(nets)
    agreed = {k: getattr(first, k) for k in _AGREE}
    cfg = DetectorCfg(name=first.name, members=len(nets), **agreed)
    cfg = calibrate(ensemble, cfg, data_dir, _excluded(first))  # families the members never saw stay out of val
    summary = data_dir / "summary.json"
    cfg = cfg.model_copy(update={"training": {
        "command": "authenticity detector combine",
        "members": [{"weights": path.name, "sha256": c.weights_sha256, "training": c.training}
                    for path, (_, c) in zip(weights, loaded, strict=True)],
        "dataset": json.loads(summary.read_text()).get("counts", {}) if summary.is_file() else {},
        "machine": f"{platform.machine()} ({cpu_model()}), torch {torch.__version__}",
    }})  # fmt: skip
    return save_detector(ensemble, cfg, out)


QUICK_AUTOENC_STEPS = 2  # the autoencoder of a --quick run


def quick_params(workdir: Path, out: Path, shared: Path | None = None) -> PipelineParams:
    """A tiny end-to-end run (seconds to a minute) for tests and smoke checks."""
    return PipelineParams(workdir=workdir, out=out, shared=shared, gan_steps=2, gan_batch=4, per_family=12,
                          autoenc_steps=QUICK_AUTOENC_STEPS, cyclegan_cap=1, progress=False,
                          finetune=replace(TrainParams(), steps=2, batch=4, checkpoint_every=1))  # fmt: skip
