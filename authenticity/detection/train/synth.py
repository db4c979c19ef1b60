"""Fake-image families that need no training: re-synthesis, self-blended faces, two offline generators.

* :func:`upsample_resynthesis` — a real photo re-drawn by a generator-style upsampling decoder.
* :func:`self_blend_face` — a face blended with a jittered copy of itself (the self-blended
  images idea of Shiohara & Yamasaki, CVPR 2022): the blending boundary and the
  colour/scale mismatch are the traces face swaps leave, without needing a second face.
* :func:`dcgan_faces` — 64×64 faces from the ``gan-face-generate`` DCGAN (weights in its wheel).
* :func:`vintagify_translate` — the ``vintagify`` CycleGAN photo→vintage generator (~1 s per 256 px image).

>>> import numpy as np
>>> self_blend_face(np.zeros((64, 64, 3), np.uint8), np.random.default_rng(0)) is None   # no face, no fake
True
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from authenticity.detection.train._resynth import upsample_resynthesis
from authenticity.errors import ConfigError

__all__ = [
    "FaceBox",
    "center_resize",
    "dcgan_faces",
    "detect_faces",
    "is_grey",
    "self_blend_face",
    "self_blend_region",
    "upsample_resynthesis",
    "vintagify_translate",
    "vintagify_translate_many",
]

FaceBox = tuple[int, int, int, int]  # x, y, width, height
_CASCADE, _CONFIRM = "haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml"
_DETECT_MAX_SIDE = 480  # Haar detection on a downscaled copy: big photos cost seconds otherwise
_BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@functools.lru_cache(maxsize=2)
def _face_cascade(name: str) -> cv2.CascadeClassifier:
    path = os.path.join(cv2.data.haarcascades, name)  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise ConfigError("detector.faces.unavailable", f"{path}: OpenCV Haar face cascade not found")
    return cascade


def _box(values: Sequence[float], scale: float) -> FaceBox:
    x, y, w, h = (round(float(v) / scale) for v in values)
    return x, y, w, h


def _iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def detect_faces(bgr: NDArray[np.uint8]) -> list[FaceBox]:
    """Frontal faces (two OpenCV Haar cascades that agree), largest first, in the image's own coordinates.

    >>> detect_faces(np.zeros((100, 100, 3), np.uint8))
    []
    """
    h, w = bgr.shape[:2]
    scale = min(1.0, _DETECT_MAX_SIDE / max(h, w))
    small = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else bgr
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    if min(gray.shape) < 30:
        return []
    found = _face_cascade(_CASCADE).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    if len(found) == 0:
        return []
    # a second, differently trained cascade must agree: the first alone fires on chessboards and foliage
    confirm = _face_cascade(_CONFIRM).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3, minSize=(30, 30))
    agreed = [_box(box, 1.0) for box in found if any(_iou(_box(box, 1.0), _box(o, 1.0)) > 0.4 for o in confirm)]
    return sorted((_box(box, scale) for box in agreed), key=lambda b: -b[2] * b[3])


def _face_mask(shape: tuple[int, int], face: FaceBox, rng: np.random.Generator) -> NDArray[np.float32]:
    """A soft convex hull of a radially jittered ellipse over the face, peak 1."""
    x, y, w, h = face
    centre = np.array([x + w / 2, y + h * rng.uniform(0.5, 0.6)])
    axes = np.array([w * rng.uniform(0.36, 0.5), h * rng.uniform(0.48, 0.64)])
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False) + rng.uniform(0, np.pi / 8)
    radii = rng.uniform(0.88, 1.1, angles.size)
    points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * axes * radii[:, None]
    mask = np.zeros(shape, np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1.0)
    sigma = max(1.0, w * rng.uniform(0.04, 0.14))
    mask = np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), np.float32)
    return mask / max(float(mask.max()), 1e-6)


def _jittered_copy(bgr: NDArray[np.uint8], face: FaceBox, rng: np.random.Generator) -> NDArray[np.float32]:
    """The same image, slightly rescaled and shifted around the face, colour-jittered, maybe blurred."""
    x, y, w, h = face
    scale = rng.uniform(0.94, 1.06)
    shift = rng.uniform(-0.04, 0.04, 2) * w
    matrix = np.asarray(cv2.getRotationMatrix2D((x + w / 2, y + h / 2), rng.uniform(-2, 2), scale), np.float64)
    matrix[:, 2] += shift
    warped = cv2.warpAffine(bgr, matrix, (bgr.shape[1], bgr.shape[0]), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    out = np.asarray(warped, np.float32) * rng.uniform(0.92, 1.08, 3) + rng.uniform(-10, 10, 3)
    if rng.random() < 0.3:  # quality mismatch: soften the pasted copy
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2)))
    elif rng.random() < 0.3:
        blur = np.asarray(cv2.GaussianBlur(out, (0, 0), 1.0))
        out = out + rng.uniform(0.3, 0.8) * (out - blur)
    return np.asarray(out, np.float32)


def self_blend_face(bgr: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8] | None:
    """A self-blended face (same size as the input), or ``None`` when no face is found.

    >>> photo = cv2.imread("face.png")                                  # doctest: +SKIP
    >>> self_blend_face(photo, np.random.default_rng(0)).shape == photo.shape   # doctest: +SKIP
    True
    """
    faces = detect_faces(bgr)
    if not faces:
        return None
    return _blend_into_itself(bgr, faces[int(rng.integers(len(faces)))], rng)


def _blend_into_itself(bgr: NDArray[np.uint8], box: FaceBox, rng: np.random.Generator) -> NDArray[np.uint8]:
    """A jittered copy of *bgr* pasted into itself through a soft ellipse over *box*.

    A grey image stays grey: the copy's colour jitter is per channel, and a tint on a
    grey photo would be a cue no real manipulation leaves (the first dataset recipe had it).
    """
    mask = _face_mask(bgr.shape[:2], box, rng) * float(rng.choice(_BLEND_RATIOS))
    source = _jittered_copy(bgr, box, rng)
    if is_grey(bgr):
        source = np.repeat(source.mean(axis=2, keepdims=True), 3, axis=2)
    out = source * mask[..., None] + bgr.astype(np.float32) * (1.0 - mask[..., None])
    return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def is_grey(bgr: NDArray[np.uint8]) -> bool:
    """Whether a BGR image is grey (three equal channels).

    >>> is_grey(np.full((2, 2, 3), 7, np.uint8)), is_grey(np.array([[[1, 2, 3]]], np.uint8))
    (True, False)
    """
    return bool((bgr[..., 0] == bgr[..., 1]).all() and (bgr[..., 1] == bgr[..., 2]).all())


def self_blend_region(bgr: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """A self-blend of a random region, face or not (same size as the input).

    The blend of :func:`self_blend_face` with the face box replaced by a random box of
    25–60 % of the short side: a jittered copy of the image pasted into itself through a
    soft ellipse. Splicing evidence that no face carries, so "face" cannot stand in for it.

    >>> self_blend_region(np.zeros((64, 64, 3), np.uint8), np.random.default_rng(0)).shape
    (64, 64, 3)
    """
    h, w = bgr.shape[:2]
    side = max(4, round(min(h, w) * rng.uniform(0.25, 0.6)))
    box: FaceBox = (int(rng.integers(0, max(1, w - side + 1))), int(rng.integers(0, max(1, h - side + 1))), side, side)
    return _blend_into_itself(bgr, box, rng)


def _to_bgr8(batch: torch.Tensor) -> list[NDArray[np.uint8]]:
    """``N×3×H×W`` RGB in [-1, 1] → list of uint8 BGR arrays."""
    pixels = ((batch.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [np.ascontiguousarray(p[..., ::-1]) for p in pixels]


@functools.lru_cache(maxsize=1)
def _dcgan() -> nn.Module:
    try:
        import gan_face_generate
        from gan_face_generate.models import Generator
    except ImportError as exc:
        hint = "DCGAN faces need: pip install --no-deps gan-face-generate"
        raise ConfigError("detector.synth.unavailable", hint) from exc
    weights = Path(gan_face_generate.__file__).parent / "weights.tar"  # a torch zip checkpoint despite the name
    net: nn.Module = Generator(ngpu=0, nc=3, nz=100, ngf=64)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["netG_state_dict"], strict=True)
    net.eval()
    return net


def dcgan_faces(n: int, rng: np.random.Generator) -> list[NDArray[np.uint8]]:
    """``n`` DCGAN faces, 64×64 uint8 BGR, from latents drawn with ``rng`` (deterministic per rng state).

    >>> [f.shape for f in dcgan_faces(2, np.random.default_rng(0))]   # doctest: +SKIP
    [(64, 64, 3), (64, 64, 3)]
    """
    net = _dcgan()
    gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
    faces: list[NDArray[np.uint8]] = []
    with torch.inference_mode():
        for start in range(0, n, 64):
            z = torch.randn(min(64, n - start), 100, 1, 1, generator=gen)
            faces += _to_bgr8(net(z))
    return faces


@functools.lru_cache(maxsize=1)
def _vintagify() -> nn.Module:
    os.environ.setdefault("MPLBACKEND", "Agg")  # the package imports pyplot on import
    try:
        import vintagify
        from vintagify.generator import ResnetGenerator
    except ImportError as exc:
        raise ConfigError("detector.synth.unavailable", "CycleGAN images need: pip install vintagify") from exc
    weights = Path(vintagify.__file__).parent / "resources" / "G_A2B_epoch33.pth"
    net: nn.Module = ResnetGenerator()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    net.eval()
    return net


def center_resize(bgr: NDArray[np.uint8], size: int) -> NDArray[np.uint8]:
    """The CycleGAN's input framing: short side resized to ``size + 30``, then the centre ``size``×``size``.

    The dataset stores this framing of a photo as the *real* counterpart of its translation.

    >>> center_resize(np.zeros((300, 400, 3), np.uint8), 64).shape
    (64, 64, 3)
    """
    h, w = bgr.shape[:2]
    scale = (size + 30) / min(h, w)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(bgr, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=interp)
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])


def vintagify_translate(bgr: NDArray[np.uint8], *, size: int = 256) -> NDArray[np.uint8]:
    """CycleGAN photo→vintage translation of the photo's :func:`center_resize` framing, uint8 BGR.

    About 1.3 s per image at 256 px on one idle CPU core (6 s at 512).

    >>> vintagify_translate(np.zeros((300, 400, 3), np.uint8), size=64).shape   # doctest: +SKIP
    (64, 64, 3)
    """
    return vintagify_translate_many([bgr], size=size)[0]


def vintagify_translate_many(images: Sequence[NDArray[np.uint8]], *, size: int = 256) -> list[NDArray[np.uint8]]:
    """:func:`vintagify_translate` for several photos in one batch (a little faster per image).

    >>> len(vintagify_translate_many([np.zeros((300, 400, 3), np.uint8)] * 2, size=64))   # doctest: +SKIP
    2
    """
    if not images:
        return []
    crops = np.stack([center_resize(image, size)[..., ::-1] for image in images])
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.inference_mode():
        return _to_bgr8(_vintagify()(x))
