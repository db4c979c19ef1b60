"""Detector stage: fine-tune the discriminator-initialised network on real vs the fake zoo.

Sampling is balanced by class and, within the fake class, by family, so a large family
cannot dominate. A fraction of batches is hardened with PGD (adversarial training) in
pixel space. Checkpoints (model + optimiser + RNG step) allow ``--resume``.

>>> # state = finetune(model, cfg, items, TrainParams(steps=600), workdir)
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import DetectorNet
from authenticity.detection.preprocess import fine_detail, normalize
from authenticity.detection.resampling import enlargement_factor, shrink_back
from authenticity.detection.train.augment import AugmentCfg, augmented_tile

__all__ = ["Item", "TrainParams", "final_weights", "finetune", "load_items", "parse_family_weights", "pgd_perturb"]


@dataclass(frozen=True)
class Item:
    path: Path
    label: int  # 1 = synthetic
    source: str


@dataclass(frozen=True)
class TrainParams:
    steps: int = 600
    batch: int = 32
    lr: float = 3e-4
    weight_decay: float = 1e-4
    freeze_blocks: int = 2  # stem + this many early stages stay frozen (generic low-level filters)
    adv_fraction: float = 0.25  # share of batches hardened with PGD
    adv_eps: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255)
    adv_steps: int = 2
    checkpoint_every: int = 50
    seed: int = 0
    exclude_families: tuple[str, ...] = ()
    small_rescale: float = 0.0  # AugmentCfg.p_small_rescale (0 = off, as the shipped model was trained)
    enlarge: float = 0.0  # AugmentCfg.p_enlarge: share of tiles cut from a region enlarged 1.25-2x (0 = off)
    pair_blends: bool = False  # a drawn blend comes with its source face crop, both augmented identically
    ema: float = 0.0  # decay of an exponential moving average of the weights; > 0: the average is what's returned
    detail_bins: int = 0  # > 0: real draws follow the fake draws' fine-detail distribution over this many bins
    family_weights: tuple[tuple[str, float], ...] = ()  # (family, w): drawn w times as often as a family of weight 1
    undo_enlargement: bool = False  # images that look enlarged are shrunk back before tiling, as scoring then does


def parse_family_weights(given: Iterable[str], families: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """``FAMILY=W`` texts as :attr:`TrainParams.family_weights`; ValueError names the first bad text.

    >>> parse_family_weights(["sd=0.5", "blend=2"], ["blend", "sd"])
    (('blend', 2.0), ('sd', 0.5))
    """
    weights: dict[str, float] = {}
    for text in given:
        family, sep, number = text.partition("=")
        try:
            weight = float(number) if sep else float("nan")
        except ValueError:
            weight = float("nan")
        if family not in families or not 0 < weight < float("inf"):
            raise ValueError(f"{text!r}: use FAMILY=W with W above 0 and FAMILY one of {', '.join(families)}")
        if family in weights:
            raise ValueError(f"{text!r}: {family} is weighted twice")
        weights[family] = weight
    return tuple(sorted(weights.items()))


def load_items(root: Path, split: str, exclude: Sequence[str] = ()) -> list[Item]:
    """Items of ``root/split/{real,fake}/<source>/*.png`` (the dataset layout)."""
    items = []
    for label, cls in ((0, "real"), (1, "fake")):
        base = root / split / cls
        for path in sorted(base.rglob("*.png")):
            source = path.relative_to(base).parts[0] if len(path.relative_to(base).parts) > 1 else "default"
            if not (label == 1 and source in exclude):
                items.append(Item(path, label, source))
    return items


class _Sampler:
    """Balanced draws: half real, half fake; fakes uniform over families (or as ``family_weights`` say).

    ``family_weights`` maps a family to its relative weight in the choice of a fake's family
    (absent: 1; a family the items do not hold is ignored). Adding a family takes a share of
    the draws from every other; a weight gives one family its share back. With every weight
    1 the draws are exactly those of the unweighted sampler (same random stream).

    With ``pair_blends``, a drawn self-blended face takes the real slot beside it for the
    face crop it was made from (same file name under ``real/face``), and both go through
    the same augmentation draws: the two tiles then differ by the blend alone, so the face
    itself cannot be the evidence (the pairing of Shiohara & Yamasaki, CVPR 2022).

    With ``detail_bins`` > 0, reals are no longer drawn uniformly: the fake draws' fine
    detail (:func:`~authenticity.detection.preprocess.fine_detail` of each whole image,
    weighted as the fakes are drawn) is cut into that many equally likely bins, and a real
    is drawn from a uniformly chosen bin (an empty bin lends its draw to the nearest bin
    that holds reals, the smoother one on a tie). How smooth an image is then says little
    about its class in the draws, since many fake families are smoother than the average
    real photo. Bin ``j`` holds details in ``(cuts[j-1], cuts[j]]``: a real as smooth as the
    fake at a cut shares that fake's bin. With ``pair_blends`` as well, a paired blend's real
    slot still takes its own face crop; only the other real slots are drawn by bin.
    """

    def __init__(self, items: Sequence[Item], rng: random.Random, augment: AugmentCfg | None = None,
                 pair_blends: bool = False, detail_bins: int = 0, tile_size: int | None = None,
                 family_weights: Mapping[str, float] | None = None,
                 undo_enlargement: bool = False) -> None:  # fmt: skip
        self.rng = rng
        self.undo_enlargement = undo_enlargement
        self.augment = augment or AugmentCfg()
        self.real = [i for i in items if i.label == 0]
        families: dict[str, list[Item]] = defaultdict(list)
        for item in items:
            if item.label == 1:
                families[item.source].append(item)
        self.families = dict(families)
        if not self.real or not self.families:
            raise ValueError("training needs real and fake items")
        weights = family_weights or {}
        if any(not 0 < w < float("inf") for w in weights.values()):  # also NaN
            raise ValueError(f"family weights must be positive and finite: {dict(weights)}")
        self.names = sorted(self.families)
        self.weights = [float(weights.get(name, 1.0)) for name in self.names]
        self._weighted = any(w != 1.0 for w in self.weights)
        faces = {i.path.name: i for i in self.real if i.source == "face"}
        self.pairs = {i.path: faces[i.path.name] for i in self.families.get("blend", []) if i.path.name in faces}
        self.pair_blends = pair_blends
        self._cache: dict[Path, np.ndarray] = {}
        self.detail_cuts: list[float] = []
        self.real_bins = [self.real]
        if detail_bins > 0:
            if tile_size is None:
                raise ValueError("detail_bins needs the tile size the detail is measured at (cfg.tile_size)")
            self.real_bins = self._detail_bins(detail_bins, tile_size)

    def _detail_bins(self, bins: int, tile_size: int) -> list[list[Item]]:
        """The reals split at the weighted quantiles of the fake draws' detail; empty bins borrow."""
        weight_of, total = dict(zip(self.names, self.weights, strict=True)), sum(self.weights)
        fakes = [(i, weight_of[f] / (total * len(m))) for f, m in self.families.items() for i in m]
        fake_detail = np.array([fine_detail(self._image(i.path), tile_size) for i, _ in fakes])
        weight = np.array([w for _, w in fakes])
        order = np.argsort(fake_detail, kind="stable")
        cumulative = np.cumsum(weight[order])
        self.detail_cuts = [float(fake_detail[order][np.searchsorted(cumulative, k / bins - 1e-12)])
                            for k in range(1, bins)]  # fmt: skip
        members: list[list[Item]] = [[] for _ in range(bins)]
        for item in self.real:
            detail = fine_detail(self._image(item.path), tile_size)
            members[int(np.searchsorted(self.detail_cuts, detail, side="left"))].append(item)
        filled = [b for b in range(bins) if members[b]]
        return [members[min(filled, key=lambda f: (abs(f - b), f))] for b in range(bins)]

    def _fake(self) -> Item:
        # unweighted: one rng.choice, the draw from before weights existed (same stream)
        family = self.rng.choices(self.names, self.weights)[0] if self._weighted else self.rng.choice(self.names)
        return self.rng.choice(self.families[family])

    def _real(self) -> Item:
        pool = self.rng.choice(self.real_bins) if len(self.real_bins) > 1 else self.real  # one bin: no extra draw
        return self.rng.choice(pool)

    def _image(self, path: Path) -> np.ndarray:
        image = self._cache.get(path)
        if image is None:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"cannot read training image {path}")
            if self.undo_enlargement:
                decoded = np.asarray(image, np.uint8)
                image = shrink_back(decoded, enlargement_factor(decoded))
            if len(self._cache) < 20000:
                self._cache[path] = image
        return image

    def batch(self, size: int, tile: int, np_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.pair_blends:
            return self._paired_batch(size, tile, np_rng)
        tiles, labels = [], []
        for k in range(size):
            item = self._real() if k % 2 == 0 else self._fake()
            tiles.append(augmented_tile(self._image(item.path), tile, np_rng, self.augment))
            labels.append(item.label)
        return np.stack(tiles), np.asarray(labels, np.float32)

    def _paired_batch(self, size: int, tile: int, np_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        tiles, labels = [], []
        for _ in range(0, size, 2):  # (real, fake) slots, as in the unpaired draw
            fake = self._fake()
            real = self.pairs.get(fake.path) or self._real()
            seed = int(np_rng.integers(2**63)) if fake.path in self.pairs else None
            for item in (real, fake):
                rng = np.random.default_rng(seed) if seed is not None else np_rng
                tiles.append(augmented_tile(self._image(item.path), tile, rng, self.augment))
                labels.append(item.label)
        return np.stack(tiles[:size]), np.asarray(labels[:size], np.float32)


def pgd_perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                std: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """PGD in pixel space (eps in [0,1] units) on normalised inputs, pushing toward the wrong class."""
    eps_n = eps / std
    step = eps_n / max(1, steps) * 2.5 if steps > 1 else eps_n
    delta = (torch.rand_like(x) * 2 - 1) * eps_n
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = loss_fn(model(torch.max(torch.min(x + delta, hi), lo)), y)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + step * grad.sign()).clamp(-eps_n, eps_n)
    return torch.max(torch.min(x + delta, hi), lo).detach()


def _freeze(model: DetectorNet, blocks: int) -> list[nn.Parameter]:
    backbone: Any = model.backbone  # timm model: attribute layout depends on the family
    frozen: list[nn.Module] = [backbone.conv_stem, backbone.bn1] if hasattr(backbone, "conv_stem") else []
    if hasattr(backbone, "blocks"):
        frozen += list(backbone.blocks[:blocks])
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def _recipe(saved: dict[str, Any] | None) -> dict[str, Any] | None:
    """A checkpoint's TrainParams, with the defaults of fields added since it was written
    (a checkpoint from before ``ema`` or ``detail_bins`` existed trained without them)."""
    return None if saved is None else {**asdict(TrainParams()), **saved}


def _network(cfg: DetectorCfg) -> dict[str, object]:
    """The cfg fields that shape the network and its input: a checkpoint resumes only if they match."""
    return cfg.model_dump(mode="json", include={"arch", "depth", "input_transform", "tile_size", "mean", "std"})


def finetune(
    model: DetectorNet,
    cfg: DetectorCfg,
    items: Sequence[Item],
    params: TrainParams,
    workdir: Path,
    *,
    resume: bool = True,
    on_step: Callable[[int, float], None] | None = None,
    device: str = "cpu",
) -> DetectorNet:
    """Train in place; returns the model (checkpoints in ``workdir/finetune.pt``).

    With ``params.ema`` > 0 an exponential moving average of the weights (batch-norm
    statistics included) is kept beside them and returned instead: a copy of the network
    whose weights average the last ~1/(1 - ema) steps. The trained weights themselves stay
    in the checkpoint under ``"model"`` (:func:`final_weights`).

    ``device`` only moves the arithmetic (``"cuda"`` where there is one); sampling and
    augmentation stay on the CPU with the same seeds.
    """
    torch.manual_seed(params.seed)
    model.to(device)
    trainable = _freeze(model, params.freeze_blocks)
    opt = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=params.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=max(2, params.steps),
                                                pct_start=0.1)  # fmt: skip
    averaged = None
    if params.ema:
        ema_fn = get_ema_multi_avg_fn(params.ema)  # type: ignore[no-untyped-call]
        averaged = AveragedModel(model, multi_avg_fn=ema_fn, use_buffers=True)
    ckpt = workdir / "finetune.pt"
    start = 0
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        # only the same recipe on the same network resumes (another --depth or --input starts afresh)
        if _recipe(state.get("params")) == asdict(params) and state.get("network") == _network(cfg):
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            if averaged is not None:
                averaged.load_state_dict(state["ema"])
            start = int(state["step"])
    augment = AugmentCfg(params.small_rescale, params.enlarge)
    sampler = _Sampler(items, random.Random(params.seed + start), augment, params.pair_blends,
                       params.detail_bins, cfg.tile_size, dict(params.family_weights),
                       params.undo_enlargement)  # fmt: skip
    np_rng = np.random.default_rng(params.seed + start)
    mean = torch.tensor(cfg.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, device=device).view(1, 3, 1, 1)
    lo, hi = (0 - mean) / std, (1 - mean) / std
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for m in model.modules():  # frozen stages keep their ImageNet/GAN statistics
        if isinstance(m, nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
    for step in range(start, params.steps):
        tiles, labels = sampler.batch(params.batch, cfg.tile_size, np_rng)
        x = torch.from_numpy(normalize(tiles, cfg)).to(device).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(labels).to(device)
        if np_rng.random() < params.adv_fraction:
            half = len(x) // 2
            eps = float(np_rng.choice(params.adv_eps))
            x[:half] = pgd_perturb(model, x[:half], y[:half], eps, params.adv_steps, std, lo, hi)
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if averaged is not None:
            averaged.update_parameters(model)
        if on_step:
            on_step(step + 1, float(loss.detach()))
        if (step + 1) % params.checkpoint_every == 0 or step + 1 == params.steps:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "ema": None if averaged is None else averaged.state_dict(),
                        "step": step + 1, "params": asdict(params), "network": _network(cfg)}, ckpt)  # fmt: skip
            (workdir / "finetune.json").write_text(json.dumps({"step": step + 1, "loss": float(loss.detach())}))
    if averaged is not None:
        model = cast(DetectorNet, averaged.module)  # a deep copy holding the average
    model.eval()
    return model.cpu()


def final_weights(model: DetectorNet, workdir: Path) -> DetectorNet:
    """Load the last trained (not averaged) weights of ``workdir``'s checkpoint into ``model``."""
    state = torch.load(workdir / "finetune.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    return model.eval()
