"""Pieces of the GAN stage: the generator, real-crop sampling, DiffAugment, and safetensors I/O of training state.

>>> import torch
>>> Generator()(torch.zeros(2, Z_DIM)).shape
torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from authenticity.detection._safetensors import save_safetensors
from authenticity.media import load_image_bgr

__all__ = [
    "IMAGE_SIZE",
    "Z_DIM",
    "Generator",
    "PixelDiscriminator",
    "RealCrops",
    "diff_augment",
    "load_state",
    "save_state",
]

Z_DIM = 128
IMAGE_SIZE = 64
_Trained = tuple[nn.Module, torch.optim.Optimizer]  # a network and its optimiser
_MAX_SIDE = 512  # photos are kept at most this big in memory; crops are downscaled further to 64 px


class Generator(nn.Module):
    """DCGAN-style: z → 4×4×``width`` → four transposed-conv ×2 stages → 64×64 RGB in [-1, 1] (tanh)."""

    def __init__(self, z_dim: int = Z_DIM, width: int = 256) -> None:
        super().__init__()
        self.z_dim, self.width = z_dim, width
        self.project = nn.Sequential(nn.Linear(z_dim, width * 16, bias=False), nn.BatchNorm1d(width * 16), nn.ReLU())
        blocks: list[nn.Module] = []
        channels = width
        for _ in range(4):  # 4 → 8 → 16 → 32 → 64
            blocks += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(channels // 2), nn.ReLU()]  # fmt: skip
            channels //= 2
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Sequential(nn.Conv2d(channels, 3, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(-1, self.width, 4, 4)
        return self.to_rgb(self.blocks(x))  # type: ignore[no-any-return]


class PixelDiscriminator(nn.Module):
    """A small from-scratch DCGAN discriminator (spectral norm) on pixels, beside the pretrained one.

    A pretrained classifier alone hands the generator gradients toward a universal
    adversarial texture (every sample the same stripes within 100 steps). A pixel-level
    critic trained from scratch supplies the structural gradients, as in vision-aided GANs.

    >>> PixelDiscriminator()(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2])
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for k in range(4):  # 64 → 32 → 16 → 8 → 4
            layers += [nn.utils.parametrizations.spectral_norm(nn.Conv2d(channels, width << k, 4, 2, 1)),
                       nn.LeakyReLU(0.2)]  # fmt: skip
            channels = width << k
        self.features = nn.Sequential(*layers)
        self.head = nn.utils.parametrizations.spectral_norm(nn.Linear((channels + 1) * 16, 1))

    def forward(self, x: torch.Tensor, group: int = 4) -> torch.Tensor:
        """Logits; ``group`` consecutive samples share a minibatch-stddev feature (ProGAN).

        Pass real and fake as separate halves with ``group`` dividing each half, so no group
        mixes them; the feature then tells a collapsed generator's batch from a real one.
        """
        f = self.features(x)
        n, c, h, w = f.shape
        if group > 1 and n % group == 0:
            spread = f.view(n // group, group, c, h, w).std(1, unbiased=False).mean((1, 2, 3)).repeat_interleave(group)
        else:
            spread = f.new_zeros(n)
        spread_map = spread.view(n, 1, 1, 1).expand(n, 1, h, w)
        return self.head(torch.cat([f, spread_map], 1).flatten(1)).squeeze(-1)  # type: ignore[no-any-return]


class RealCrops:
    """Random 64×64 crops of real photos, each cut at a random scale and downscaled so it holds content.

    Photos are drawn in proportion to their area (capped at 512 px a side), so the 400
    small grayscale BSD crops don't dominate the colour photos.

    >>> crops = RealCrops([Path("photo.png")])              # doctest: +SKIP
    >>> crops.batch(16, np.random.default_rng(0)).shape     # doctest: +SKIP
    torch.Size([16, 3, 64, 64])
    """

    def __init__(self, paths: Sequence[Path], size: int = IMAGE_SIZE) -> None:
        if not paths:
            raise ValueError("the GAN needs at least one real photo")
        self.size = size
        self.images: list[np.ndarray] = []
        for path in paths:
            image = load_image_bgr(path, max_pixels=64_000_000)
            scale = min(1.0, _MAX_SIDE / max(image.shape[:2]))
            if scale < 1:
                image = np.asarray(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8)
            self.images.append(image)
        area = np.array([float(i.shape[0] * i.shape[1]) for i in self.images])
        self.weights = area / area.sum()

    def crop(self, rng: np.random.Generator) -> np.ndarray:
        """One 64×64 RGB uint8 crop."""
        image = self.images[int(rng.choice(len(self.images), p=self.weights))]
        h, w = image.shape[:2]
        short = min(h, w)
        side = int(rng.integers(min(short, max(self.size, short // 3)), short + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        patch = image[y : y + side, x : x + side]
        interp = cv2.INTER_AREA if side >= self.size else cv2.INTER_LINEAR
        patch = np.asarray(cv2.resize(patch, (self.size, self.size), interpolation=interp), np.uint8)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        return np.ascontiguousarray(patch[..., ::-1])

    def batch(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """``n×3×64×64`` float RGB in [-1, 1]."""
        crops = np.stack([self.crop(rng) for _ in range(n)])
        return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def diff_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Differentiable colour (brightness, saturation, contrast) and translation (±1/8, zero fill) augmentation.

    Applied identically in kind to real and fake batches before the discriminator
    (Zhao et al., 2020), so the discriminator can't memorise the few real photos.

    >>> diff_augment(torch.zeros(2, 3, 8, 8), torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 8, 8])
    """
    n, _, h, w = x.shape

    def rand() -> torch.Tensor:
        return torch.rand(n, 1, 1, 1, generator=gen)

    x = x + (rand() - 0.5) * 0.5
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (rand() * 1.5 + 0.25) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (rand() + 0.5) + mean
    pad = max(1, h // 8)
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen).tolist()
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])


def _flatten(prefix: str, module: nn.Module, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    flat = {f"{prefix}/model/{k}": v.detach().contiguous() for k, v in module.state_dict().items()}
    for index, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            flat[f"{prefix}/opt/{index}/{key}"] = torch.as_tensor(value).contiguous()
    return flat


def save_state(path: Path, nets: Mapping[str, _Trained], meta: dict[str, object]) -> None:
    """Models + Adam moments in one safetensors file, written atomically (tmp file, then rename)."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, (module, opt) in nets.items():
        tensors.update(_flatten(prefix, module, opt))
    save_safetensors(tensors, path, {"meta": json.dumps(meta)})


def load_state(path: Path, nets: Mapping[str, _Trained]) -> dict[str, object]:
    """Restore what :func:`save_state` wrote (strictly); returns its metadata."""
    from safetensors import safe_open

    tensors = load_file(str(path))
    for prefix, (module, opt) in nets.items():
        module.load_state_dict({k.split("/", 2)[2]: v for k, v in tensors.items() if k.startswith(f"{prefix}/model/")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(f"{prefix}/opt/"):
                _, _, index, name = key.split("/", 3)
                state.setdefault(int(index), {})[name] = value
        opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
    with safe_open(str(path), "pt") as fh:
        meta: dict[str, object] = json.loads((fh.metadata() or {})["meta"])
    return meta
