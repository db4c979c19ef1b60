"""Scoring images and videos with a loaded detector (loaded once per process, batched).

Per image: native-resolution tiles → one logit each → aggregated (cfg.aggregate) →
calibrated probability ``sigmoid((z + logit_bias) / temperature)`` → label with an
uncertain band. Per video: frames sampled at ``fps`` (at most ``max_frames``), each frame
scored as an image plus its detected faces, and the video's logit is the median over
frames (robust to a few odd frames). Bad input becomes a per-file ``error``; it never
stops the other files.

>>> detector = Detector.load()                       # doctest: +SKIP
>>> result = detector.score_path(Path("upload.jpg"))  # doctest: +SKIP
>>> result.label, round(result.score, 3)              # doctest: +SKIP
('authentic-looking', 0.042)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from authenticity.detection._runtime import tune_cpu
from authenticity.detection.config import DetectorCfg, Label
from authenticity.detection.model import Network, load_detector
from authenticity.detection.preprocess import Box, ScoringView, image_tiles, scoring_view, view_tiles
from authenticity.detection.video import FrameSample, sample_frames
from authenticity.errors import AuthenticityError, MediaError
from authenticity.media import load_image_bgr, sniff_file

__all__ = ["DetectionResult", "Detector", "FrameScore", "TileScore", "default_weights_path", "with_undo_enlargement"]

MIN_SIDE = 16  # below this there is nothing to score (a 1×1 image is an input error)


def default_weights_path() -> Path:
    """The shipped model: inside the wheel, or the repository's ``data/``."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_data" / "detector.safetensors", here.parent / "data" / "detector.safetensors"):
        if candidate.is_file():
            return candidate
    return here.parent / "data" / "detector.safetensors"


@dataclass(frozen=True)
class TileScore:
    y: int
    x: int
    size: int
    score: float


@dataclass(frozen=True)
class FrameScore:
    index: int
    time_s: float
    score: float
    faces: int


@dataclass(frozen=True)
class DetectionResult:
    """One file's outcome. ``error`` is set (and score None) when it could not be scored."""

    path: str
    score: float | None
    label: Label | None
    model: dict[str, str]
    kind: str = "image"
    tiles: tuple[TileScore, ...] = ()
    frames: tuple[FrameScore, ...] | None = None
    error: dict[str, str] | None = None
    size: tuple[int, int] | None = None  # (height, width) of the image as scored (shrunk back or brought up to a tile)
    enlargement: float | None = None  # images scored with undo_enlargement: the factor undone (1.0: none found)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "score": self.score,
                               "label": self.label.value if self.label else None, "model": self.model,
                               "kind": self.kind}  # fmt: skip
        if self.enlargement is not None:
            out["enlargement"] = round(self.enlargement, 3)
        if self.frames is not None:
            out["frames"] = [{"index": f.index, "time_s": round(f.time_s, 3), "score": round(f.score, 6),
                              "faces": f.faces} for f in self.frames]  # fmt: skip
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class _Scored:
    """What a result keeps of the scored view: its size and the enlargement undone."""

    size: tuple[int, int]
    enlargement: float

    @classmethod
    def of(cls, view: ScoringView) -> _Scored:
        return cls((view.image.shape[0], view.image.shape[1]), view.enlargement)


@dataclass
class _Pending:
    tiles: NDArray[np.float32]
    logits: list[float] = field(default_factory=list)


class Detector:
    """A loaded detector. Build once with :meth:`load`; score many files."""

    def __init__(
        self,
        model: Network,
        cfg: DetectorCfg,
        *,
        batch_size: int = 32,
        max_pixels: int = 100_000_000,
        undo_enlargement: bool | None = None,
    ):
        """*undo_enlargement* overrides the cfg's ``undo_enlargement`` (None: as the cfg says)."""
        tune_cpu()
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.cfg = with_undo_enlargement(cfg, undo_enlargement)
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.model_info = {"name": cfg.name, "arch": cfg.arch, "weights_sha256": cfg.weights_sha256}
        if self.cfg.undo_enlargement:
            self.model_info["undo_enlargement"] = "on"

    @classmethod
    def load(cls, weights: Path | None = None, **kwargs: Any) -> Detector:
        model, cfg = load_detector(weights or default_weights_path())
        return cls(model, cfg, **kwargs)

    # -- numbers -------------------------------------------------------------------------
    def calibrate(self, logit: float) -> float:
        """Calibrated probability of synthesis for an aggregated logit."""
        z = (logit + self.cfg.logit_bias) / self.cfg.temperature
        return float(1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0))))

    def aggregate(self, logits: Iterable[float]) -> float:
        values = np.asarray(list(logits), dtype=np.float64)
        return float(values.max() if self.cfg.aggregate == "max_logit" else values.mean())

    @torch.inference_mode()
    def tile_logits(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        """Raw logits for a stack of normalised tiles, in batches."""
        device = next(self.model.parameters()).device  # the CPU, unless a caller moved the model
        out = [self.model(torch.from_numpy(tiles[i : i + self.batch_size]).to(device)
                          .contiguous(memory_format=torch.channels_last)).float().cpu().numpy()
               for i in range(0, len(tiles), self.batch_size)]  # fmt: skip
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def image_logit(self, bgr: NDArray[np.uint8]) -> float:
        """The aggregated, uncalibrated logit of one decoded image (its tiles in one call)."""
        return self.aggregate(self.tile_logits(image_tiles(bgr, self.cfg)[0]).tolist())

    def _run(self, pending: list[_Pending]) -> None:
        if not pending:
            return
        logits = self.tile_logits(np.concatenate([p.tiles for p in pending]))
        start = 0
        for item in pending:
            item.logits = logits[start : start + len(item.tiles)].tolist()
            start += len(item.tiles)

    # -- images --------------------------------------------------------------------------
    def _check_size(self, path: Path, bgr: NDArray[np.uint8]) -> None:
        h, w = bgr.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise MediaError("detection.image.too_small",
                             f"{path}: {w}x{h} is too small to score (minimum {MIN_SIDE} px per side)")  # fmt: skip

    def score_array(self, bgr: NDArray[np.uint8], path: str = "<array>") -> DetectionResult:
        """Score one decoded BGR image."""
        self._check_size(Path(path), bgr)
        view = scoring_view(bgr, self.cfg)
        tiles, boxes = view_tiles(view, self.cfg)
        return self._image_result(path, boxes, self.tile_logits(tiles).tolist(), _Scored.of(view))

    def _image_result(self, path: str, boxes: list[Box], logits: list[float], scored: _Scored) -> DetectionResult:
        score = self.calibrate(self.aggregate(logits))
        tiles = tuple(TileScore(b.y, b.x, b.size, self.calibrate(z)) for b, z in zip(boxes, logits, strict=True))
        enlargement = scored.enlargement if self.cfg.undo_enlargement else None
        return DetectionResult(path, score, self.cfg.label_for(score), self.model_info, "image", tiles,
                               size=scored.size, enlargement=enlargement)  # fmt: skip

    def error_result(self, path: Path, exc: AuthenticityError, kind: str = "unknown") -> DetectionResult:
        return DetectionResult(str(path), None, None, self.model_info, kind=kind,
                               error={"code": exc.code, "message": exc.message})  # fmt: skip

    # -- videos --------------------------------------------------------------------------
    def score_video(self, path: Path, *, fps: float = 1.0, max_frames: int = 32) -> DetectionResult:
        """Score sampled frames (whole frame + faces) and aggregate with the median."""
        samples = sample_frames(path, fps=fps, max_frames=max_frames, max_pixels=self.max_pixels)
        frames: list[FrameScore] = []
        frame_logits: list[float] = []
        for sample in samples:
            frame_logits.append(self.frame_logit(sample))
            frames.append(FrameScore(sample.index, sample.time_s, self.calibrate(frame_logits[-1]), len(sample.faces)))
        score = self.calibrate(float(np.median(frame_logits)))
        return DetectionResult(str(path), score, self.cfg.label_for(score), self.model_info, "video",
                               frames=tuple(frames))  # fmt: skip

    def frame_logit(self, sample: FrameSample, whole: float | None = None) -> float:
        """A video frame's logit: the most suspicious of the whole frame and each face found in it.

        *whole* is the whole frame's own logit where the caller has it already (scored as an image).

        >>> detector.frame_logit(FrameSample(0, 0.0, bgr, detect_faces(bgr)))  # doctest: +SKIP
        -3.2
        """
        if whole is None:
            whole = self.image_logit(sample.bgr)
        # A manipulated face in an untouched frame is the classic deepfake: the frame counts
        # as suspicious as its most suspicious part.
        return max([whole, *self.face_logits(sample)])

    def face_logits(self, sample: FrameSample) -> list[float]:
        """One logit per face found in the frame that is large enough to score (``MIN_SIDE``)."""
        return [self.image_logit(face) for face in sample.faces if min(face.shape[:2]) >= MIN_SIDE]

    # -- files ---------------------------------------------------------------------------
    def score_path(self, path: Path, *, fps: float = 1.0, max_frames: int = 32) -> DetectionResult:
        """Score one file; input errors come back as ``result.error``."""
        return next(self.score_paths([path], fps=fps, max_frames=max_frames))

    def score_paths(
        self,
        paths: Iterable[Path],
        *,
        fps: float = 1.0,
        max_frames: int = 32,
        on_done: Callable[[DetectionResult], None] | None = None,
    ) -> Iterator[DetectionResult]:
        """Score many files in order; image tiles from several files share a batch."""
        queue: list[tuple[Path, _Pending, list[Box], _Scored]] = []
        queued_tiles = 0

        def flush() -> Iterator[DetectionResult]:
            nonlocal queued_tiles
            self._run([p for _, p, _, _ in queue])
            for qpath, pending, boxes, scored in queue:
                yield self._image_result(str(qpath), boxes, pending.logits, scored)
            queue.clear()
            queued_tiles = 0

        for path in paths:
            kind = "unknown"
            try:
                media_type = sniff_file(path)
                kind = "video" if media_type.is_video else "image"
                if media_type.is_video:
                    result = self.score_video(path, fps=fps, max_frames=max_frames)
                else:
                    bgr = load_image_bgr(path, max_pixels=self.max_pixels)
                    self._check_size(path, bgr)
                    view = scoring_view(bgr, self.cfg)
                    tiles, boxes = view_tiles(view, self.cfg)
                    queue.append((path, _Pending(tiles), boxes, _Scored.of(view)))  # not the image: tiles only
                    queued_tiles += len(tiles)
                    if queued_tiles >= self.batch_size:
                        yield from _notify(flush(), on_done)
                    continue
            except AuthenticityError as exc:
                result = self.error_result(path, exc, kind)
            yield from _notify(flush(), on_done)  # keep output in input order
            yield from _notify(iter([result]), on_done)
        yield from _notify(flush(), on_done)


def with_undo_enlargement(cfg: DetectorCfg, undo: bool | None) -> DetectorCfg:
    """*cfg*, with ``undo_enlargement`` set to *undo* unless that is None.

    >>> with_undo_enlargement(DetectorCfg(), True).undo_enlargement
    True
    """
    return cfg if undo is None else cfg.model_copy(update={"undo_enlargement": undo})


def _notify(
    results: Iterator[DetectionResult], on_done: Callable[[DetectionResult], None] | None
) -> Iterator[DetectionResult]:
    for result in results:
        if on_done is not None:
            on_done(result)
        yield result
