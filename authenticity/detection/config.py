"""``DetectorCfg``: everything needed to rebuild and run a detector, saved beside its weights.

Preprocessing, aggregation, calibration and decision thresholds are all read from the
cfg, never hard-coded elsewhere (CONVENTIONS 4). The cfg records the SHA-256 of the
weights file it belongs to; loading checks it.

>>> cfg = DetectorCfg(arch="tf_efficientnet_lite0")
>>> DetectorCfg.model_validate_json(cfg.model_dump_json()) == cfg
True
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from authenticity.errors import ConfigError

__all__ = [
    "AUTOENC_STEPS",
    "CFG_VERSION",
    "FAKE_FAMILIES",
    "INPUT_TRANSFORMS",
    "SHIPPED_MEMBERS",
    "DetectorCfg",
    "InputTransform",
    "Label",
    "input_transform_named",
    "load_cfg",
]

CFG_VERSION = 1
InputTransform = Literal["rgb", "npr"]
INPUT_TRANSFORMS: tuple[InputTransform, ...] = ("rgb", "npr")
# The fake families `detector train` builds (detection/train/dataset.py), in the order that
# seeds their random streams; ``autoenc`` needs its autoencoder trained first (``--autoenc-steps``);
# ``esrgan`` (a super-resolution GAN fetched from npm, ``--sr-family``) draws from a stream of its own.
FAKE_FAMILIES = ("gan", "sd", "dcgan", "cyclegan", "upsample", "blend", "autoenc", "esrgan")
# The autoencoder's training steps in the shipped recipe (docs/detector.md); ~0.3 s a step on 2 cores.
AUTOENC_STEPS = 600
# Fine-tunings the shipped model averages (`detector train --members`). One: the ensemble of two,
# shipped for a day, lost to its own first member on the val split and on unseen DCGAN faces
# (docs/detector.md, "The ensemble of two (`40cf8288…`): shipped, then withdrawn").
SHIPPED_MEMBERS = 1
# Fake families drawn more often than the others in the shipped recipe (`detector train
# --family-weight`). Blends twice: with the esrgan family in the recipe, they get back the share
# of the fake draws (and the AUC) that an eighth family took from them (docs/detector.md).
SHIPPED_FAMILY_WEIGHTS: tuple[tuple[str, float], ...] = (("blend", 2.0),)


def input_transform_named(name: str) -> InputTransform | None:
    """The input transform called ``name``, or None when there is none.

    >>> input_transform_named("npr"), input_transform_named("fft")
    ('npr', None)
    """
    return next((known for known in INPUT_TRANSFORMS if known == name), None)


class Label(enum.StrEnum):
    SYNTHETIC = "synthetic"
    AUTHENTIC_LOOKING = "authentic-looking"
    UNCERTAIN = "uncertain"


class DetectorCfg(BaseModel):
    """Architecture, preprocessing, calibration and provenance of one set of weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = CFG_VERSION
    name: str = "authenticity-detector"
    arch: str = "tf_efficientnet_lite0"
    # Backbone stages kept (0 = all). A truncated trunk sees a small receptive field: its
    # logit is the mean of local decisions, which weighs low-level synthesis traces over scene content.
    depth: int = Field(default=0, ge=0)
    # What the trunk sees: the normalised tile ("rgb"), or its neighbouring-pixel residual
    # ("npr": each pixel minus the top-left pixel of its 2×2 block, after Tan et al., CVPR 2024),
    # which keeps the local correlations generators' upsamplers leave and drops most scene content.
    input_transform: InputTransform = "rgb"
    # Fine-tunings of this architecture scored as one network, their logits averaged (a deep
    # ensemble: ``model.DetectorEnsemble``); 1 = a single network.
    members: int = Field(default=1, ge=1)
    tile_size: int = 128
    max_tiles: int = 16
    # Score an image that looks enlarged at the size it had before (``resampling``): the
    # network reads interpolation's missing detail as synthesis. Off for cfgs written before it.
    undo_enlargement: bool = False
    # TF-ported EfficientNet-Lite weights expect inputs scaled to [-1, 1].
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    aggregate: str = "mean_logit"  # over tiles; "mean_logit" or "max_logit"
    temperature: float = 1.0
    logit_bias: float = 0.0
    threshold: float = 0.5
    uncertain_band: tuple[float, float] = (0.35, 0.65)
    weights_sha256: str = ""
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)

    def label_for(self, probability: float) -> Label:
        """Decision from a calibrated probability: the uncertain band wins over the threshold.

        >>> DetectorCfg().label_for(0.9)
        <Label.SYNTHETIC: 'synthetic'>
        """
        low, high = self.uncertain_band
        if low <= probability <= high:
            return Label.UNCERTAIN
        return Label.SYNTHETIC if probability >= self.threshold else Label.AUTHENTIC_LOOKING

    def save(self, path: Path) -> None:
        """Write pretty JSON (reviewable in git)."""
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")


def load_cfg(path: Path) -> DetectorCfg:
    """Read a cfg JSON; an unknown version or field is a ``detector.cfg.invalid`` error."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError("detector.cfg.not_found", f"{path}: detector config not found") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError("detector.cfg.invalid", f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("version") != CFG_VERSION:
        raise ConfigError("detector.cfg.invalid", f"{path}: unsupported detector config version")
    try:
        return DetectorCfg.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ConfigError("detector.cfg.invalid", f"{path}: {where}: {first['msg']}") from exc
