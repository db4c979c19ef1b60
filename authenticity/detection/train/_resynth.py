"""Upsampler re-synthesis: push a real photo through a generator-style decoder and back to full size.

Generators draw their output through learned upsamplers, and each kind leaves its own
spectral fingerprint: transposed convolutions a checkerboard (uneven kernel overlap),
nearest-neighbour upsampling spectral replicas, bilinear + conv a periodic smoothing.
Training such a decoder per image is too slow on a CPU, so each decoder here is a
fixed-seed *random* network (an extreme-learning machine) whose only learned part, a
linear read-out of its full-resolution features, is fitted to the photo in closed form
(ridge regression). The output stays close to the photo while every pixel still comes
out of the upsampler, which is the point.

>>> import numpy as np
>>> out = upsample_resynthesis(np.full((40, 50, 3), 128, np.uint8), np.random.default_rng(0))
>>> out.shape, out.dtype
((40, 50, 3), dtype('uint8'))
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

__all__ = ["DECODER_FACTORS", "DECODER_KINDS", "DECODER_SEEDS", "resynthesize", "upsample_resynthesis"]

DECODER_KINDS = ("transposed", "nearest", "bilinear")
DECODER_FACTORS = (2, 4)
DECODER_SEEDS = 8  # a family of eight random decoders per (kind, factor)
_WIDTH = 16
_RIDGE = 1e-3
_FIT_PIXELS = 16384


class _RandomDecoder(nn.Module):
    """Conv encoder at low resolution → ``log2(factor)`` upsampling stages of one kind → features."""

    def __init__(self, kind: str, factor: int, seed: int) -> None:
        super().__init__()
        w = _WIDTH
        self.encode = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU())
        stages: list[nn.Module] = []
        for _ in range(int(math.log2(factor))):
            if kind == "transposed":  # kernel 3 overlaps unevenly (strong checkerboard), kernel 4 evenly
                k = 3 if seed % 2 == 0 else 4
                stages.append(nn.ConvTranspose2d(w, w, k, stride=2, padding=1, output_padding=1 if k == 3 else 0))
            else:
                stages += [nn.Upsample(scale_factor=2, mode=kind), nn.Conv2d(w, w, 3, padding=1)]
            stages.append(nn.ReLU())
        self.upsample = nn.Sequential(*stages)
        gen = torch.Generator().manual_seed(seed * 1009 + factor * 31 + DECODER_KINDS.index(kind))
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                k_h, k_w = module.kernel_size
                stride = module.stride[0] if isinstance(module, nn.ConvTranspose2d) else 1
                fan_in = module.in_channels * k_h * k_w / stride**2
                with torch.no_grad():
                    module.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=gen)
                    assert module.bias is not None
                    module.bias.normal_(0.0, 0.1, generator=gen)
        self.requires_grad_(False)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.encode(low))  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=len(DECODER_KINDS) * len(DECODER_FACTORS) * DECODER_SEEDS)
def _decoder(kind: str, factor: int, seed: int) -> _RandomDecoder:
    return _RandomDecoder(kind, factor, seed).eval()


def _features(padded: NDArray[np.uint8], kind: str, factor: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder features of the downsampled photo (plus its bilinear upsampling) and the photo, both 1×C×H×W."""
    ph, pw = padded.shape[:2]
    x = torch.from_numpy(padded.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    low = torch.from_numpy(
        cv2.resize(padded.astype(np.float32) / 127.5 - 1.0, (pw // factor, ph // factor), interpolation=cv2.INTER_AREA)
    ).permute(2, 0, 1)[None]
    smooth = nn.functional.interpolate(low, size=(ph, pw), mode="bilinear", align_corners=False)
    feats = torch.cat([_decoder(kind, factor, seed)(low), smooth], 1)
    feats = (feats - feats.mean((0, 2, 3), keepdim=True)) / (feats.std((0, 2, 3), keepdim=True) + 1e-6)
    return feats, x


def resynthesize(bgr: NDArray[np.uint8], kind: str, factor: int, seed: int) -> NDArray[np.uint8]:
    """Re-synthesise ``bgr`` through decoder ``(kind, factor, seed)``; same shape and dtype.

    The read-out is a 3×3 convolution over the decoder's features, fitted by ridge
    regression on a fixed random subsample of pixels and then applied everywhere.

    >>> img = np.random.default_rng(0).integers(0, 256, (33, 35, 3), dtype=np.uint8)
    >>> resynthesize(img, "transposed", 4, 0).shape
    (33, 35, 3)
    """
    if kind not in DECODER_KINDS or factor not in DECODER_FACTORS or not 0 <= seed < DECODER_SEEDS:
        raise ValueError(f"no decoder ({kind!r}, {factor}, {seed})")
    h, w = bgr.shape[:2]
    # pad to a multiple of the factor (plus a margin) so the decoder's output grid lines up with the photo
    border = cv2.copyMakeBorder(bgr, 0, (-h) % factor + factor, 0, (-w) % factor + factor, cv2.BORDER_REFLECT_101)
    padded: NDArray[np.uint8] = np.asarray(border, np.uint8)
    with torch.inference_mode():
        feats, x = _features(padded, kind, factor, seed)
        _, c, ph, pw = feats.shape
        gen = torch.Generator().manual_seed(seed)
        n = min(_FIT_PIXELS, (ph - 2) * (pw - 2))
        ys = torch.randint(1, ph - 1, (n,), generator=gen)
        xs = torch.randint(1, pw - 1, (n,), generator=gen)
        rows = feats[0].permute(1, 2, 0).reshape(ph * pw, c)  # one row of features per pixel
        cols = [rows[(ys + dy) * pw + xs + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]  # 9 × (n, C)
        a = torch.cat([*cols, torch.ones(n, 1)], 1)  # n × (9C + 1), same order as a conv kernel's (dy, dx)
        gram = a.T @ a + _RIDGE * n * torch.eye(a.shape[1])
        target = x[0].permute(1, 2, 0).reshape(ph * pw, 3)[ys * pw + xs]
        weights = torch.linalg.solve(gram, a.T @ target)  # (9C + 1) × 3
        kernel = weights[:-1].T.reshape(3, 3, 3, c).permute(0, 3, 1, 2)  # out, in, dy, dx
        out = nn.functional.conv2d(feats, kernel.contiguous(), weights[-1], padding=1)[0]
    pixels = (out.permute(1, 2, 0).numpy()[:h, :w] + 1.0) * 127.5
    return np.ascontiguousarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def upsample_resynthesis(bgr: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """Re-synthesise through a random member of the decoder family (kind × factor ×2/×4 × seed); ×2 twice as often.

    >>> img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    >>> upsample_resynthesis(img, np.random.default_rng(1)).shape
    (64, 64, 3)
    """
    kind = DECODER_KINDS[int(rng.integers(len(DECODER_KINDS)))]
    factor = 2 if rng.random() < 2 / 3 else 4  # ×4 loses most detail; keep it the minority
    return resynthesize(bgr, kind, factor, int(rng.integers(DECODER_SEEDS)))
