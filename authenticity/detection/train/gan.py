"""The adversarial stage: a small generator trained against the detector network as discriminator.

The discriminator *is* ``DetectorNet(cfg.arch)``, its backbone initialised from ImageNet
EfficientNet-Lite0 (Projected-GAN's observation: a pretrained feature network makes a
strong, data-efficient discriminator). Its logit keeps the detector's sign convention
(positive = synthetic), so its final weights initialise the detector directly. Batch-norm
statistics stay frozen at their ImageNet values (the affine parameters still train): with
separate real and fake batches, live statistics would let D read the batch's composition
(tried: D then separates nothing).

A pretrained classifier alone steers the generator into one universal adversarial texture
(every sample the same stripes within 100 steps, measured). So a small from-scratch pixel
critic (:class:`PixelDiscriminator`, with minibatch-stddev against collapse) drives the
generator at first; the detector network's gradient is ramped in from 40 % to 70 % of the
steps, up to weight ``DETECTOR_WEIGHT``. The detector network trains on every step.

Loss: hinge; Adam (G and pixel critic 2e-4, detector network 5e-5, β=(0.5, 0.999));
DiffAugment (colour, translation) on real and fake alike. Every step's randomness is
derived from ``(seed, step)``, so a resumed run continues as an uninterrupted one would.

>>> result = train_gan(DetectorCfg(), reals, Path("gan"), steps=DEFAULT_GAN_STEPS, batch=16, seed=0,
...                    checkpoint_every=50, resume=True)               # doctest: +SKIP
>>> faces = sample_generator(result.generator_checkpoints[-1], 8, seed=1)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from authenticity.detection._safetensors import save_safetensors
from authenticity.detection.config import DetectorCfg
from authenticity.detection.model import DetectorNet, imagenet_lite0_state_dict
from authenticity.detection.train._gan_parts import (
    Z_DIM,
    Generator,
    PixelDiscriminator,
    RealCrops,
    diff_augment,
    load_state,
    save_state,
)
from authenticity.errors import ConfigError

__all__ = [
    "DEFAULT_GAN_STEPS",
    "GanResult",
    "gan_finished",
    "generator_checkpoints",
    "sample_generator",
    "stage_steps",
    "train_gan",
]

STATE_FILE = "state.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
DEFAULT_GAN_STEPS = 1500  # ~8 min at batch 16 on 2 CPU threads (3.15 steps/s measured, lightly loaded box)
DETECTOR_WEIGHT = 0.2  # the detector network's share of the generator's loss, once ramped in
RAMP = (0.4, 0.7)  # ... linearly between these fractions of the steps


@dataclass(frozen=True)
class GanResult:
    """What one :func:`train_gan` call left in ``out_dir``."""

    out_dir: Path
    steps: int  # done so far (less than asked for when ``stop_after`` ended the call)
    resumed_from: int  # 0 for a fresh run
    generator_checkpoints: tuple[Path, ...]
    discriminator: Path
    seconds: float
    steps_per_second: float  # of the steps run in this call
    history: tuple[dict[str, float], ...]  # {"step", "d_loss", "g_loss", "d_real", "d_fake"} every few steps


def stage_steps(steps: int) -> list[int]:
    """The steps after which a generator checkpoint is kept: 25 %, 50 %, 75 % and 100 %.

    >>> stage_steps(400), stage_steps(2)
    ([100, 200, 300, 400], [1, 2])
    """
    return sorted({max(1, math.ceil(steps * q)) for q in (0.25, 0.5, 0.75, 1.0)})


def generator_checkpoints(gan_dir: Path) -> list[Path]:
    """Generator checkpoints in ``gan_dir``, earliest first.

    >>> generator_checkpoints(Path("/nonexistent"))
    []
    """
    return sorted(gan_dir.glob("generator_step*.safetensors")) if gan_dir.is_dir() else []


def _discriminator(cfg: DetectorCfg) -> DetectorNet:
    net = DetectorNet(cfg.arch)
    net.backbone.load_state_dict(imagenet_lite0_state_dict(), strict=True)
    return net


def _freeze_bn_stats(net: nn.Module) -> None:
    net.train()
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def _step_randomness(seed: int, step: int) -> tuple[np.random.Generator, torch.Generator]:
    torch.manual_seed(seed * 1_000_003 + step + 1)  # the global stream feeds dropout in the head
    return np.random.default_rng([seed, step]), torch.Generator().manual_seed(seed * 1_000_003 + step)


def _save_generator(gen: Generator, path: Path, step: int, seed: int) -> None:
    state = {k: v.detach().contiguous() for k, v in gen.state_dict().items()}
    meta = {"z_dim": str(gen.z_dim), "width": str(gen.width), "step": str(step), "seed": str(seed)}
    save_safetensors(state, path, meta)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=not enabled)  # fmt: skip


class _Step:
    """One adversarial step: both discriminators on real vs fake, then the generator."""

    def __init__(self, cfg: DetectorCfg, seed: int) -> None:
        torch.manual_seed(seed)
        self.gen, self.pixel = Generator(), PixelDiscriminator()
        # channels-last: ~1.8x faster on CPU for EfficientNet
        self.disc = _discriminator(cfg).to(memory_format=torch.channels_last)
        adam = {"betas": (0.5, 0.999)}
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=2e-4, **adam)  # type: ignore[arg-type]
        self.opt_p = torch.optim.Adam(self.pixel.parameters(), lr=2e-4, **adam)  # type: ignore[arg-type]
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=5e-5, **adam)  # type: ignore[arg-type]
        self.nets = {"G": (self.gen, self.opt_g), "P": (self.pixel, self.opt_p), "D": (self.disc, self.opt_d)}
        self.mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.std).view(1, 3, 1, 1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB → the detector network's logit (positive = synthetic)."""
        x = ((x + 1) / 2 - self.mean) / self.std
        return self.disc(x.contiguous(memory_format=torch.channels_last))  # type: ignore[no-any-return]

    def __call__(self, real: torch.Tensor, tgen: torch.Generator, weight: float) -> dict[str, float]:
        self.gen.train()
        _freeze_bn_stats(self.disc)
        self.pixel.train()
        n = real.shape[0]
        fake = self.gen(torch.randn(n, Z_DIM, generator=tgen))
        # one forward for both halves: D's BN statistics are frozen and the pixel critic's
        # minibatch-stddev groups never straddle the halves, so mixing them leaks nothing
        both = torch.cat([diff_augment(real, tgen), diff_augment(fake.detach(), tgen)])
        d_real, d_fake = self.score(both).chunk(2)
        group = next(g for g in (4, 2, 1) if n % g == 0)
        p_real, p_fake = self.pixel(both, group).chunk(2)
        d_loss = torch.relu(1 + d_real).mean() + torch.relu(1 - d_fake).mean()
        p_loss = torch.relu(1 + p_real).mean() + torch.relu(1 - p_fake).mean()
        for opt in (self.opt_d, self.opt_p):
            opt.zero_grad(set_to_none=True)
        torch.autograd.backward(d_loss + p_loss)
        self.opt_d.step()
        self.opt_p.step()
        self.disc.requires_grad_(False)  # the generator step needs input gradients only
        self.pixel.requires_grad_(False)
        seen = diff_augment(fake, tgen)
        g_loss = self.pixel(seen, group).mean()
        if weight > 0:
            g_loss = g_loss + weight * self.score(seen).mean()
        self.opt_g.zero_grad(set_to_none=True)
        torch.autograd.backward(g_loss)
        self.opt_g.step()
        self.disc.requires_grad_(True)
        self.pixel.requires_grad_(True)
        return {"d_loss": d_loss.item(), "p_loss": p_loss.item(), "g_loss": g_loss.item(),
                "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}  # fmt: skip


def _ramp(step: int, steps: int) -> float:
    begin, end = RAMP
    return DETECTOR_WEIGHT * min(1.0, max(0.0, (step / steps - begin) / (end - begin)))


def train_gan(
    cfg: DetectorCfg,
    reals: Sequence[Path],
    out_dir: Path,
    steps: int,
    batch: int,
    seed: int,
    checkpoint_every: int,
    resume: bool,
    *,
    stop_after: int | None = None,
    progress: bool = True,
) -> GanResult:
    """Train to ``steps`` steps (resuming from ``out_dir/state.safetensors`` when ``resume``).

    Writes ``generator_step{N:06d}.safetensors`` at :func:`stage_steps`, the full training
    state every ``checkpoint_every`` steps and on return, ``discriminator.safetensors`` (a
    ``DetectorNet`` state dict) and ``gan_log.json``. ``stop_after`` ends this call after that
    many steps (a budgeted run; call again with ``resume=True`` to go on). Thread count is
    the caller's choice.
    """
    if steps < 1 or batch < 2 or checkpoint_every < 1:
        raise ValueError("steps and checkpoint_every must be >= 1, batch >= 2")
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = _Step(cfg, seed)
    start, history = 0, []
    state_path = out_dir / STATE_FILE
    if resume and state_path.is_file():
        meta = load_state(state_path, trainer.nets)
        start, history = min(int(str(meta["step"])), steps), list(meta.get("history", []))  # type: ignore[call-overload]
    crops = RealCrops(reals) if start < steps else None
    stages = set(stage_steps(steps))
    end = steps if stop_after is None else min(steps, start + stop_after)
    began = time.perf_counter()
    with _progress(progress) as bar:
        task = bar.add_task("GAN", total=steps, completed=start)
        for step in range(start, end):
            assert crops is not None
            rng, tgen = _step_randomness(seed, step)
            losses = trainer(crops.batch(batch, rng), tgen, _ramp(step, steps))
            done = step + 1
            if done % 5 == 0 or done == steps:
                history.append({"step": done} | {k: round(v, 4) for k, v in losses.items()})
            if done in stages:
                _save_generator(trainer.gen, out_dir / f"generator_step{done:06d}.safetensors", done, seed)
            if done % checkpoint_every == 0 or done == end:
                save_state(state_path, trainer.nets, {"step": done, "seed": seed, "steps": steps, "history": history})
            bar.update(task, advance=1, description=f"GAN d={losses['d_loss']:.2f} g={losses['g_loss']:.2f}")
    seconds = time.perf_counter() - began
    disc_path = out_dir / DISCRIMINATOR_FILE
    disc_state = {k: v.detach().contiguous() for k, v in trainer.disc.state_dict().items()}
    save_safetensors(disc_state, disc_path, {"arch": cfg.arch, "steps": str(steps), "seed": str(seed)})
    log = {"steps": steps, "done": end, "seed": seed, "batch": batch, "history": history}
    (out_dir / "gan_log.json").write_text(json.dumps(log, indent=1) + "\n")
    ran = end - start
    return GanResult(
        out_dir=out_dir,
        steps=end,
        resumed_from=start,
        generator_checkpoints=tuple(generator_checkpoints(out_dir)),
        discriminator=disc_path,
        seconds=seconds,
        steps_per_second=ran / seconds if ran and seconds > 0 else 0.0,
        history=tuple(history),
    )


def gan_finished(out_dir: Path, steps: int, seed: int) -> bool:
    """Whether ``out_dir`` holds a finished adversarial stage of ``steps`` steps and ``seed``:
    a resumed :func:`train_gan` then trains nothing and reads no real images."""
    try:
        log = json.loads((out_dir / "gan_log.json").read_text())
    except (OSError, ValueError):
        return False
    finished = isinstance(log, dict) and log.get("done") == log.get("steps") == steps and log.get("seed") == seed
    return finished and (out_dir / DISCRIMINATOR_FILE).is_file() and (out_dir / STATE_FILE).is_file()


def sample_generator(checkpoint: Path, n: int, seed: int) -> list[NDArray[np.uint8]]:
    """``n`` images (64×64 uint8 BGR) from a generator checkpoint, latents seeded by ``seed``.

    >>> images = sample_generator(Path("gan/generator_step000400.safetensors"), 4, seed=0)   # doctest: +SKIP
    >>> images[0].shape                                                                         # doctest: +SKIP
    (64, 64, 3)
    """
    if not checkpoint.is_file():
        raise ConfigError("detector.gan.missing", f"{checkpoint}: generator checkpoint not found")
    with safe_open(str(checkpoint), "pt") as fh:
        meta = fh.metadata() or {}
    gen = Generator(int(meta.get("z_dim", Z_DIM)), int(meta.get("width", 256)))
    gen.load_state_dict(load_file(str(checkpoint)), strict=True)
    # batch statistics, not running averages: early in training the running averages lag far
    # behind and collapse every sample to one image (measured); momentum 0 leaves them untouched
    gen.train()
    for module in gen.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.0
    tgen = torch.Generator().manual_seed(seed)
    images: list[NDArray[np.uint8]] = []
    with torch.inference_mode():
        for begin in range(0, n, 64):
            out = gen(torch.randn(64, gen.z_dim, generator=tgen))[: n - begin]  # full batches: stable statistics
            pixels = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            images += [np.ascontiguousarray(p[..., ::-1]) for p in pixels]
    return images
