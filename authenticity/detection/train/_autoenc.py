"""Autoencoder reconstruction: real photos re-drawn through a small *trained* latent autoencoder.

Latent-diffusion generators (Stable Diffusion and its descendants) never paint pixels
directly: every image they make leaves through the decoder of an autoencoder. A photo
pushed through such an autoencoder and back is therefore a fake that carries the
decoder's traces and nothing else — same scene, same framing, same size as its real
twin. Rajan et al. (ICLR 2025, "aligned datasets") report that real photos against
their own autoencoder reconstructions teach a detector the decoder rather than the
content. No latent-diffusion autoencoder ships offline here, so this module trains a
small one of the same shape (residual conv encoder, 4-channel latent at 1/4 resolution,
nearest-neighbour + conv upsampling decoder) on the *train split's* colour photos, on
the CPU, in a few minutes. Unlike :mod:`._resynth`'s random decoders, this decoder is
learned end to end, as real generators' decoders are.

>>> import numpy as np
>>> ae = train_autoencoder([np.full((40, 48, 3), 90, np.uint8)], steps=1, seed=0, crop=32, batch=2)
>>> reconstruct(ae, np.full((33, 35, 3), 90, np.uint8)).shape
(33, 35, 3)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import torch
from numpy.typing import NDArray
from rich.progress import Progress
from safetensors.torch import load_file
from torch import nn

from authenticity.detection._safetensors import save_safetensors

__all__ = [
    "AE_FILE",
    "AE_RECIPE",
    "LatentAutoencoder",
    "PatchCritic",
    "is_colour",
    "load_autoencoder",
    "reconstruct",
    "save_autoencoder",
    "train_autoencoder",
]

AE_FILE = "autoencoder.safetensors"
# Bumped when the training recipe changes, so a dataset made by an older autoencoder is rebuilt
# (1: drew from every photo and learnt to drop colour; 2: colour photos only, optional critic).
AE_RECIPE = 2
_FACTOR = 4  # two stride-2 stages, as in the f=4 latent-diffusion autoencoders
_LATENT = 4
_WIDTHS = (24, 48)


class _Res(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
                                  nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)  # type: ignore[no-any-return]


class LatentAutoencoder(nn.Module):
    """Encoder to a ``_LATENT``-channel latent at 1/``_FACTOR`` resolution and a decoder back; input in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        a, b = _WIDTHS
        self.encoder = nn.Sequential(
            nn.Conv2d(3, a, 3, padding=1), _Res(a), nn.Conv2d(a, b, 3, stride=2, padding=1),
            _Res(b), nn.Conv2d(b, b, 3, stride=2, padding=1), _Res(b),
            nn.GroupNorm(8, b), nn.SiLU(), nn.Conv2d(b, _LATENT, 1),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Conv2d(_LATENT, b, 3, padding=1), _Res(b),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(b, b, 3, padding=1), _Res(b),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(b, a, 3, padding=1), _Res(a),
            nn.GroupNorm(8, a), nn.SiLU(), nn.Conv2d(a, 3, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # type: ignore[no-any-return]


class PatchCritic(nn.Module):
    """A small PatchGAN critic: one realness logit per ~22-px receptive field (as in VQGAN / LDM autoencoders)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.GroupNorm(8, 64), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 3, padding=1), nn.GroupNorm(8, 128), nn.LeakyReLU(0.2),
            nn.Conv2d(128, 1, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # type: ignore[no-any-return]


def _to_tensor(bgr: NDArray[np.uint8]) -> torch.Tensor:
    return torch.from_numpy(bgr.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


class _Duel:
    """The adversarial half of :func:`train_autoencoder`: a critic, its optimiser and VQGAN's adaptive weight."""

    def __init__(self, strength: float, last: torch.Tensor) -> None:
        self.strength, self.last = strength, last
        self.critic = PatchCritic()
        self.opt = torch.optim.Adam(self.critic.parameters(), lr=4e-4, betas=(0.5, 0.9))

    def generator_loss(self, reconstruction: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        fooled: torch.Tensor = -self.critic(out).mean()
        rec_grad = torch.autograd.grad(reconstruction, self.last, retain_graph=True)[0]
        adv_grad = torch.autograd.grad(fooled, self.last, retain_graph=True)[0]
        weight = (rec_grad.norm() / (adv_grad.norm() + 1e-4)).clamp(max=1e4).detach()
        total: torch.Tensor = reconstruction + self.strength * weight * fooled
        return total

    def critic_step(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        hinge: torch.Tensor = (nn.functional.relu(1.0 - self.critic(real)).mean()
                               + nn.functional.relu(1.0 + self.critic(fake)).mean())  # fmt: skip
        self.opt.zero_grad(set_to_none=True)
        torch.autograd.backward(hinge)
        self.opt.step()


def is_colour(bgr: NDArray[np.uint8]) -> bool:
    """Whether the channels differ (by more than 2 levels summed over two channel pairs): grey photos do not."""
    pixels = bgr.astype(np.int16)
    spread = np.abs(pixels[..., 0] - pixels[..., 1]).mean() + np.abs(pixels[..., 1] - pixels[..., 2]).mean()
    return bool(spread > 2.0)


def _batch(photos: Sequence[NDArray[np.uint8]], rng: np.random.Generator, crop: int, batch: int) -> torch.Tensor:
    crops = []
    for _ in range(batch):
        image = photos[int(rng.integers(len(photos)))]
        h, w = image.shape[:2]
        side = min(crop, h, w)
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        tensor = _to_tensor(np.ascontiguousarray(image[y : y + side, x : x + side]))
        if side < crop:  # a small photo: stretch its crop to the batch's size
            tensor = nn.functional.interpolate(tensor[None], size=(crop, crop), mode="bilinear")[0]
        crops.append(tensor)
    return torch.stack(crops)


def train_autoencoder(photos: Sequence[NDArray[np.uint8]], *, steps: int, seed: int, crop: int = 96, batch: int = 8,
                      lr: float = 2e-3, adversarial: float = 0.0, adv_start: float = 0.3,
                      progress: Progress | None = None) -> LatentAutoencoder:  # fmt: skip
    """Fit the autoencoder to random ``crop``-px crops of ``photos`` (BGR uint8); deterministic for a seed.

    The loss is L1 on pixels plus L1 on pixel differences: the second keeps edges and
    texture, where a pixel loss alone settles for blur. Only colour photos are drawn from
    (all of them when none is in colour): grey ones are four in five of our real photos
    (Train400), and with them in the mix, even at half the crops, the decoder learnt to
    drop colour (measured in docs/detector.md). Grey images are colour images with equal
    channels, and a decoder trained on colour re-draws them well.

    ``adversarial > 0`` adds, from ``adv_start`` of the way through, a hinge loss against a
    :class:`PatchCritic` trained alongside, weighted as VQGAN does: ``adversarial`` times
    the ratio of the two losses' gradient norms at the decoder's last layer (the critic
    is what makes latent-diffusion decoders draw texture rather than blur). The critic is
    made after the autoencoder, so ``adversarial=0`` is exactly the plain recipe.
    """
    if not photos:
        raise ValueError("train_autoencoder needs at least one photo")
    if crop < _FACTOR or crop % _FACTOR:
        raise ValueError(f"crop {crop}: use a multiple of {_FACTOR}")
    if not adversarial >= 0.0 or not 0.0 <= adv_start <= 1.0:
        raise ValueError(f"adversarial {adversarial} must be >= 0 and adv_start {adv_start} within 0..1")
    colour = [p for p in photos if is_colour(p)] or list(photos)
    rng = np.random.default_rng([seed, 7])
    torch.manual_seed(seed)
    model = LatentAutoencoder()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    duel = _Duel(adversarial, cast(nn.Conv2d, model.decoder[-1]).weight) if adversarial > 0 else None
    task = progress.add_task("autoencoder", total=steps) if progress is not None else None
    model.train()
    for step in range(steps):
        x_batch = _batch(colour, rng, crop, batch)
        out = model(x_batch)
        (gy, gx), (ty, tx) = _gradients(out), _gradients(x_batch)
        loss = (out - x_batch).abs().mean() + (gy - ty).abs().mean() + (gx - tx).abs().mean()
        dueling = step >= adv_start * steps
        if duel is not None and dueling:
            loss = duel.generator_loss(loss, out)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if duel is not None and dueling:
            duel.critic_step(x_batch, out.detach())
        if progress is not None and task is not None:
            progress.advance(task)
    return model.eval().requires_grad_(False)


def reconstruct(model: LatentAutoencoder, bgr: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``bgr`` encoded and decoded; same shape and dtype (padded by reflection to the latent grid, then cut back)."""
    h, w = bgr.shape[:2]
    x = _to_tensor(bgr)[None]
    pad_h, pad_w = (-h) % _FACTOR, (-w) % _FACTOR
    if pad_h or pad_w:
        x = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if pad_h < h and pad_w < w else "replicate")
    with torch.inference_mode():
        out = model(x)[0, :, :h, :w]
    pixels = (out.permute(1, 2, 0).numpy() + 1.0) * 127.5
    return np.ascontiguousarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def save_autoencoder(model: LatentAutoencoder, path: Path, meta: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def load_autoencoder(path: Path) -> LatentAutoencoder:
    model = LatentAutoencoder()
    model.load_state_dict(load_file(str(path)))
    return model.eval().requires_grad_(False)
